"""Disputes: a booking's guest or host opens one; admins read the queue, add notes and
resolve them (services/disputes.py holds the rules)."""

from functools import partial

import strawberry

from resolvers.node import node_id
from resolvers.permissions import IsAdmin, IsAuthenticated, require_user
from schema.context import Info
from schema.disputes import (
    DisputeConnection,
    DisputeEdge,
    DisputeResolution,
    DisputeStatus,
    DisputeType,
)
from schema.listings import MoneyInput
from services import checkout
from services import disputes as disputes_service


def _connection(info: Info, page: disputes_service.DisputePage) -> DisputeConnection:
    database = info.context.database

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return DisputeConnection.of(
        [
            DisputeEdge(cursor_value=cursor, node=DisputeType.from_row(row))
            for row, cursor in zip(page.disputes, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def disputes(
    info: Info,
    status: DisputeStatus | None = DisputeStatus.OPEN,
    first: int | None = 20,
    after: str | None = None,
) -> DisputeConnection:
    admin = await require_user(info)
    async with info.context.database.read_session() as session:
        page = await disputes_service.list_disputes(
            session,
            admin=admin,
            status=status.value if status else None,
            first=20 if first is None else first,
            after=after,
        )
    return _connection(info, page)


async def my_disputes(
    info: Info, first: int | None = 20, after: str | None = None
) -> DisputeConnection:
    user = await require_user(info)
    async with info.context.database.read_session() as session:
        page = await disputes_service.disputes_of_party(
            session, user_id=user.id, first=20 if first is None else first, after=after
        )
    return _connection(info, page)


async def open_dispute(info: Info, booking_id: strawberry.ID, message: str) -> DisputeType:
    actor = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            disputes_service.open_dispute,
            actor=actor,
            booking_id=node_id(booking_id, "Booking", "bookingId"),
            message=message,
            now=info.context.services.clock(),
        )
    )
    return DisputeType.from_row(row)


async def add_dispute_note(info: Info, id: strawberry.ID, body: str) -> DisputeType:
    admin = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            disputes_service.add_note,
            admin=admin,
            dispute_id=node_id(id, "Dispute", "id"),
            body=body,
            now=info.context.services.clock(),
        )
    )
    return DisputeType.from_row(row)


async def resolve_dispute(
    info: Info,
    id: strawberry.ID,
    resolution: DisputeResolution,
    note: str,
    amount: MoneyInput | None = None,
) -> DisputeType:
    admin = await require_user(info)
    database = info.context.database
    services = info.context.services
    row, call = await database.transaction(
        partial(
            disputes_service.resolve,
            admin=admin,
            dispute_id=node_id(id, "Dispute", "id"),
            resolution=resolution,
            amount=disputes_service.Amount(amount.amount, amount.currency) if amount else None,
            note=note,
            now=services.clock(),
            gateways=services.payment_gateways,
        )
    )
    await checkout.settle(
        database.transaction, services.payment_gateways, call, clock=services.clock
    )
    return DisputeType.from_row(row)


@strawberry.type
class DisputeQueries:
    disputes: DisputeConnection = strawberry.field(
        resolver=disputes,
        permission_classes=[IsAdmin],
        description="The disputes queue (admins only), oldest first: of a status (OPEN by "
        "default; null: all). first: 1 to 100.",
    )
    my_disputes: DisputeConnection = strawberry.field(
        resolver=my_disputes,
        permission_classes=[IsAuthenticated],
        description="Disputes about the viewer's bookings, as guest or host, newest first; "
        "without admins' notes.",
    )


@strawberry.type
class DisputeMutations:
    open_dispute: DisputeType = strawberry.mutation(
        resolver=open_dispute,
        permission_classes=[IsAuthenticated],
        description="The booking's guest or host asks Roost to step in: a CONFIRMED or "
        "COMPLETED booking, until 30 days after check-out, one open dispute at a time "
        "(CONFLICT). message: 1 to 2,000 characters. Holds the host's payout until resolved.",
    )
    add_dispute_note: DisputeType = strawberry.mutation(
        resolver=add_dispute_note,
        permission_classes=[IsAdmin],
        description="Admins only (audited): a note on a dispute, read by admins only. body: 1 "
        "to 2,000 characters.",
    )
    resolve_dispute: DisputeType = strawberry.mutation(
        resolver=resolve_dispute,
        permission_classes=[IsAdmin],
        description="Admins only (audited): decides an open dispute. REFUND: amount back to "
        "the guest (at most what is left of the payment); PAYOUT_ADJUSTMENT: the host's "
        "payout, not yet sent, amount smaller (CONFLICT once sent); NO_ACTION: no amount. "
        "note: told to both sides.",
    )
