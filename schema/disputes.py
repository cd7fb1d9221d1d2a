"""Disputes as the booking's sides and admins read them (services/disputes.py)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.rows import DisputeNoteRow, DisputeRow
from resolvers.permissions import current_user
from schema.accounts import UserType
from schema.bookings import BookingType, CanceledBy
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import MoneyType
from services import disputes as disputes_service

# The states' own enums, registered with strawberry (see schema/listings.py).
DisputeStatus = states.DisputeStatus
strawberry.enum(
    DisputeStatus, description="OPEN: waiting for an admin; RESOLVED: an admin decided it."
)
DisputeResolution = states.DisputeResolution
strawberry.enum(
    DisputeResolution,
    description="How an admin decided a dispute. REFUND: money back to the guest; "
    "PAYOUT_ADJUSTMENT: the host's payout, not yet sent, made smaller; NO_ACTION: nothing "
    "moves.",
)


@strawberry.type(name="DisputeNote", description="An admin's note on a dispute (admins only).")
class DisputeNoteType:
    id: strawberry.ID
    body: str
    created_at: datetime
    _row: strawberry.Private[DisputeNoteRow]

    @strawberry.field(description="The admin who wrote it.")
    async def author(self, info: Info) -> UserType:
        return UserType.from_row(await info.context.loaders.user_by_id.load_existing(
            self._row.author_id
        ))  # fmt: skip

    @classmethod
    def from_row(cls, row: DisputeNoteRow) -> Self:
        return cls(
            id=strawberry.ID(str(row.id)), body=row.body, created_at=row.created_at, _row=row
        )


@strawberry.type(
    name="Dispute",
    description="A booking's guest or host asked Roost to step in. Its sides and admins read "
    "it; only admins read its notes.",
)
class DisputeType(relay.Node):
    dispute_id: relay.NodeID[int]
    status: DisputeStatus
    opened_as: CanceledBy = strawberry.field(description="GUEST or HOST: who opened it.")
    message: str = strawberry.field(description="What they said.")
    created_at: datetime
    resolution: DisputeResolution | None
    resolution_amount: MoneyType | None = strawberry.field(
        description="Refunded (REFUND) or taken off the payout (PAYOUT_ADJUSTMENT)."
    )
    resolution_note: str | None = strawberry.field(
        description="The admin's word to both sides on the decision."
    )
    resolved_at: datetime | None
    _row: strawberry.Private[DisputeRow]

    @strawberry.field
    async def booking(self, info: Info) -> BookingType:
        row = await info.context.loaders.booking_by_id.load_existing(self._row.booking_id)
        return BookingType.from_row(row)

    @strawberry.field(description="Admins' notes, oldest first; null for anyone else.")
    async def notes(self, info: Info) -> list[DisputeNoteType] | None:
        if not rules.is_admin(await current_user(info)):
            return None
        async with info.context.database.read_session() as session:
            rows = await disputes_service.notes_of(session, self._row.id)
        return [DisputeNoteType.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: DisputeRow) -> Self:
        amount = (
            MoneyType.of(row.amount_minor, row.currency)
            if row.amount_minor is not None and row.currency is not None
            else None
        )
        return cls(
            dispute_id=row.id,
            status=DisputeStatus(row.status),
            opened_as=CanceledBy(row.opened_as),
            message=row.message,
            created_at=row.created_at,
            resolution=DisputeResolution(row.resolution) if row.resolution else None,
            resolution_amount=amount,
            resolution_note=row.resolution_note,
            resolved_at=row.resolved_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [int(node_id) for node_id in node_ids]
        viewer = await current_user(info)
        if viewer is None:
            return [None for _ in ids]
        async with info.context.database.read_session() as session:
            found = await disputes_service.disputes_by_id(session, ids)
            sides = {
                row.id: await disputes_service.parties_of(session, row.booking_id)
                for row in found.values()
            }
        return [
            cls.from_row(found[i])
            if i in found and (rules.is_admin(viewer) or viewer.id in sides[i])
            else None
            for i in ids
        ]


@strawberry.type(description="A dispute in a list, with the cursor to continue after it.")
class DisputeEdge(Edge[DisputeType]):
    pass


@strawberry.type(description="A page of disputes.")
class DisputeConnection(Connection[DisputeEdge]):
    total_count: int = total_count("How many disputes match in all.")
