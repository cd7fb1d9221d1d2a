"""The dashboard's pages over money and disputes: cancel a booking with a refund, refund a
payment, payouts (search, retry a failed one), the providers' event log, and the disputes queue
(notes, resolution). Each action is the GraphQL operation's service call, then the provider
asked and its answer applied (``checkout.settle``), as the API does it."""

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.admin.pages import (
    DETAIL_ROWS,
    PAGE_SIZE,
    actors_of,
    done_message,
    paging,
    posted_form,
    posted_text,
)
from app.admin.rendering import (
    admin_only,
    choice,
    date_field,
    field,
    id_field,
    redirect,
    render,
)
from app.admin.session import PATH, Admin, services
from db.loaders import Loaders
from db.states import DisputeResolution, DisputeStatus, PaymentProvider, PayoutStatus
from services import admin_users, audit, checkout, disputes, payouts, provider_events
from services.errors import InvalidInput, NotFound
from services.payments import ProviderCall


async def _move_money(
    request: Request, step: Callable[[AsyncSession], Awaitable[ProviderCall | None]]
) -> None:
    """The step in a unit of work; then the provider is asked and its answer applied in a
    second one (as the API's ``move_money``)."""
    database = request.app.state.database
    state = services(request)
    call = await database.transaction(step)
    await checkout.settle(database.transaction, state.payment_gateways, call, clock=state.clock)


def _amount(form: Any, name: str) -> Decimal:
    raw = field(form, name, limit=40)
    try:
        value = Decimal(raw or "")
    except InvalidOperation:
        raise InvalidInput.field(name, "must be an amount, like 120.50") from None
    if not value.is_finite():
        raise InvalidInput.field(name, "must be an amount, like 120.50")
    return value


@admin_only
async def cancel_booking(request: Request, admin: Admin) -> Response:
    booking_id: int = request.path_params["booking_id"]
    form = await posted_form(request)
    state = services(request)
    await _move_money(
        request,
        partial(
            checkout.admin_cancel_booking,
            admin=admin.user,
            booking_id=booking_id,
            refund=_amount(form, "refund"),
            currency=posted_text(form, "currency"),
            reason=posted_text(form, "reason"),
            gateways=state.payment_gateways,
            now=state.clock(),
        ),
    )
    return redirect(f"{PATH}/bookings/{booking_id}?done=booking-canceled")


@admin_only
async def refund_payment(request: Request, admin: Admin) -> Response:
    payment_id: int = request.path_params["payment_id"]
    form = await posted_form(request)
    booking_id = id_field(form, "booking")
    state = services(request)
    await _move_money(
        request,
        partial(
            checkout.refund_payment,
            admin=admin.user,
            payment_id=payment_id,
            amount=_amount(form, "amount"),
            currency=posted_text(form, "currency"),
            reason=posted_text(form, "reason"),
            gateways=state.payment_gateways,
            now=state.clock(),
        ),
    )
    if booking_id is not None:
        return redirect(f"{PATH}/bookings/{booking_id}?done=payment-refunded")
    return redirect(f"{PATH}/payments?done=payment-refunded")


@admin_only
async def payouts_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    status = choice(query, "status", PayoutStatus)
    async with request.app.state.database.read_session() as session:
        page = await payouts.list_payouts(
            session,
            host_id=id_field(query, "host"),
            where=payouts.PayoutFilter(
                status=status.value if status else None,
                start=date_field(query, "from"),
                end=date_field(query, "to"),
            ),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
        hosts = await admin_users.emails(session, [payout.host_id for payout in page.payouts])
    return render(
        request,
        "payouts.html",
        admin=admin,
        payouts=page.payouts,
        hosts=hosts,
        **await paging(request, page),
        query=query,
        statuses=list(PayoutStatus),
        done=done_message(request),
    )


@admin_only
async def retry_payout(request: Request, admin: Admin) -> Response:
    payout_id: int = request.path_params["payout_id"]
    await request.app.state.database.transaction(
        partial(
            payouts.retry_payout,
            admin=admin.user,
            payout_id=payout_id,
            now=services(request).clock(),
        )
    )
    return redirect(f"{PATH}/payouts?done=payout-retried")


@admin_only
async def events_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    provider = choice(query, "provider", PaymentProvider)
    async with request.app.state.database.read_session() as session:
        page = await provider_events.list_events(
            session,
            admin=admin.user,
            provider=provider.value if provider else None,
            payment_id=id_field(query, "payment"),
            payout_id=id_field(query, "payout"),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
    return render(
        request,
        "events.html",
        admin=admin,
        events=page.events,
        **await paging(request, page),
        query=query,
        providers=list(PaymentProvider),
    )


@admin_only
async def disputes_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    # OPEN unless asked: the queue is what waits for an admin ("ALL" shows every one).
    wanted = field(query, "status", limit=10) or DisputeStatus.OPEN
    status = None if wanted == "ALL" else choice({"status": wanted}, "status", DisputeStatus)
    async with request.app.state.database.read_session() as session:
        page = await disputes.list_disputes(
            session,
            admin=admin.user,
            status=status.value if status else None,
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
        people = await admin_users.emails(session, [row.opened_by for row in page.disputes])
    return render(
        request,
        "disputes.html",
        admin=admin,
        disputes=page.disputes,
        people=people,
        wanted=wanted,
        statuses=[*DisputeStatus, "ALL"],
        **await paging(request, page),
        query=query,
        done=done_message(request),
    )


@admin_only
async def dispute(request: Request, admin: Admin) -> Response:
    dispute_id: int = request.path_params["dispute_id"]
    async with request.app.state.database.read_session() as session:
        found = (await disputes.disputes_by_id(session, [dispute_id])).get(dispute_id)
        if found is None:
            raise NotFound("No such dispute.")
        notes = await disputes.notes_of(session, dispute_id)
        guest_id, host_id = await disputes.parties_of(session, found.booking_id)
        people = await admin_users.emails(
            session,
            [found.opened_by, guest_id, host_id, *(note.author_id for note in notes)]
            + ([found.resolved_by] if found.resolved_by else []),
        )
        changes = await audit.list_entries(
            session, first=DETAIL_ROWS, subject=("Dispute", dispute_id)
        )
        actors = await actors_of(session, changes.entries)
    booking = await Loaders(request.app.state.database).booking_by_id.load(found.booking_id)
    return render(
        request,
        "dispute.html",
        admin=admin,
        dispute=found,
        notes=notes,
        people=people,
        guest_id=guest_id,
        host_id=host_id,
        booking_currency=booking.currency if booking else "",
        resolutions=list(DisputeResolution),
        changes=changes.entries,
        actors=actors,
        done=done_message(request),
    )


@admin_only
async def add_dispute_note(request: Request, admin: Admin) -> Response:
    dispute_id: int = request.path_params["dispute_id"]
    form = await posted_form(request)
    await request.app.state.database.transaction(
        partial(
            disputes.add_note,
            admin=admin.user,
            dispute_id=dispute_id,
            body=posted_text(form, "body"),
            now=services(request).clock(),
        )
    )
    return redirect(f"{PATH}/disputes/{dispute_id}?done=note-added")


@admin_only
async def resolve_dispute(request: Request, admin: Admin) -> Response:
    dispute_id: int = request.path_params["dispute_id"]
    form = await posted_form(request)
    resolution = choice(form, "resolution", DisputeResolution)
    if resolution is None:
        raise InvalidInput.field("resolution", "choose how the dispute is resolved")
    amount = None
    if resolution != DisputeResolution.NO_ACTION or field(form, "amount", limit=40):
        amount = disputes.Amount(_amount(form, "amount"), posted_text(form, "currency"))
    state = services(request)
    database = request.app.state.database
    _, call = await database.transaction(
        partial(
            disputes.resolve,
            admin=admin.user,
            dispute_id=dispute_id,
            resolution=resolution,
            amount=amount,
            note=posted_text(form, "note"),
            now=state.clock(),
            gateways=state.payment_gateways,
        )
    )
    await checkout.settle(database.transaction, state.payment_gateways, call, clock=state.clock)
    return redirect(f"{PATH}/disputes/{dispute_id}?done=dispute-resolved")
