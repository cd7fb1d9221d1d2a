"""Host payouts: a payout account per host, and one payout per completed booking.

A host connects an account at the provider (a Stripe Connect Express account, onboarded on
Stripe's own pages); Stripe's ``account.updated`` says when it can be paid into. Once a stay
has been COMPLETED for the payout delay, a worker writes its payout (``create_due``), amount
fixed then by ``pricing.host_payout``; a payout whose host has no ready account waits PENDING
and is sent once the account is ready.

Sending runs on the money pipeline: (a) ``claim_due`` moves due payouts to SENDING under a
lease and commits; (b) the provider is asked for the transfer, with no transaction open, under
the payout's idempotency key; (c) the answer is recorded in a second short transaction. A worker
that dies after (a) leaves the lease to lapse, and the next claim asks again under the same key,
so the provider answers the transfer it already made: a host is never paid twice. No answer
(a timeout, a 5xx) leaves the key as it is and tries again with backoff; a refusal (no money
moved) marks the payout FAILED and tries again later under a new key, a few times, then leaves
it to a person.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth.rules import is_admin
from db.models import Booking, Dispute, Listing, Payment, PayoutAccount
from db.models import Payout as PayoutModel
from db.rows import Actor, PayoutAccountRow, PayoutRow, UserRow
from db.states import (
    CAPTURED_PAYMENT,
    UNPAID_PAYOUT,
    BookingStatus,
    DisputeStatus,
    PaymentProvider,
    PayoutAccountStatus,
    PayoutStatus,
)
from gateways.payments import PaymentDeclined, ProviderUnavailable
from gateways.payouts import AccountState, OnboardingLink, PayoutGateway
from gateways.stripe import account_state, from_stripe
from services import audit, cursors
from services.checkout import Transaction
from services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentFailed,
    ServiceUnavailable,
)
from services.events import PayoutSent, emit
from services.payments import Gateways, in_flight
from services.pricing import host_payout

log = logging.getLogger("roost.payouts")

MAX_URL_LENGTH = 2_000
MAX_PAGE_SIZE = 100
MAX_EARNINGS_DAYS = 366


# Stripe keeps an idempotency key's answer for at least a day: a key first sent longer ago
# than this is not relied on, and the provider is asked whether the transfer exists first.
KEY_TRUSTED_FOR = timedelta(hours=23)
# How far back from its due date a cancelled stay is looked for (``create_due``).
CANCELED_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class PayoutPolicy:
    host_fee_percent: Decimal = Decimal(3)
    delay: timedelta = timedelta(hours=24)
    # Longer than a transfer can take (the SDK's timeout and retries), so a live worker keeps it.
    lease: timedelta = timedelta(minutes=2)
    max_declines: int = 5
    batch_size: int = 50


def retry_delay(attempts: int) -> timedelta:
    """After no answer: 1, 2, 4 ... minutes, up to an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=1))


def decline_delay(declines: int) -> timedelta:
    """After a refusal (Roost's balance short, say): 1, 2, 4 ... hours, up to a day."""
    return min(timedelta(hours=2 ** max(declines - 1, 0)), timedelta(days=1))


def payout_gateway(gateways: Gateways) -> PayoutGateway | None:
    """The provider hosts are paid through: Stripe, where it is configured."""
    gateway = gateways.by_provider.get(PaymentProvider.STRIPE)
    return gateway if isinstance(gateway, PayoutGateway) else None


def payout_unit_of(gateway: PayoutGateway | None) -> Callable[[str], int]:
    """What payouts are rounded down to, per currency: the payout provider's smallest transfer;
    the minor unit while none is configured (the payout then waits PENDING)."""
    return gateway.amount_step if gateway else lambda currency: 1


def transfer_key(payout_id: int, declines: int) -> str:
    """A new key only after a refusal, when no money moved under the previous one."""
    return f"payout-{payout_id}" if declines == 0 else f"payout-{payout_id}-retry-{declines}"


# The host's account.


def _account_row(account: PayoutAccount) -> PayoutAccountRow:
    return PayoutAccountRow._make(getattr(account, name) for name in PayoutAccountRow._fields)


async def account_of(session: AsyncSession, host_id: int) -> PayoutAccountRow | None:
    account = await session.scalar(select(PayoutAccount).where(PayoutAccount.host_id == host_id))
    return None if account is None else _account_row(account)


def check_return_url(value: str, field: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise InvalidInput.field(field, f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # an unclosed IPv6 bracket, a bad port
        hostname = None
    if hostname is None or parts.scheme not in ("http", "https") or value != value.strip():
        raise InvalidInput.field(field, "must be an http or https URL")
    return value


@dataclass(frozen=True)
class AccountOpening:
    account_id: int
    reference: str | None
    email: str
    country: str | None


async def open_account(session: AsyncSession, *, host: UserRow) -> AccountOpening:
    """The host's account row, made on the first call; the provider's id once known."""
    await session.execute(
        insert(PayoutAccount)
        .values(host_id=host.id, provider=PaymentProvider.STRIPE)
        .on_conflict_do_nothing(index_elements=[PayoutAccount.host_id])
    )
    account = await session.scalar(select(PayoutAccount).where(PayoutAccount.host_id == host.id))
    assert account is not None  # noqa: S101 (inserted above, or there already)
    # Where the host's newest listing is: Stripe opens the account in that country.
    country = await session.scalar(
        select(Listing.country)
        .where(Listing.host_id == host.id, Listing.deleted_at.is_(None))
        .order_by(Listing.id.desc())
        .limit(1)
    )
    return AccountOpening(account.id, account.provider_account_id, host.email, country)


async def store_account_reference(
    session: AsyncSession, *, account_id: int, reference: str
) -> None:
    await session.execute(
        update(PayoutAccount)
        .where(PayoutAccount.id == account_id, PayoutAccount.provider_account_id.is_(None))
        .values(provider_account_id=reference)
    )


@dataclass(frozen=True)
class Onboarding:
    link: OnboardingLink
    account: PayoutAccountRow


async def connect_account(
    transaction: Transaction,
    gateway: PayoutGateway | None,
    *,
    host: UserRow,
    return_url: str,
    refresh_url: str,
) -> Onboarding:
    """(a) The host's account row; (b) the provider's account, created once under a key of
    that row (a repeated or concurrent call gets the same one back); (c) its id kept; then a
    fresh onboarding link, which the provider makes single-use and short-lived."""
    check_return_url(return_url, "returnUrl")
    check_return_url(refresh_url, "refreshUrl")
    if gateway is None:
        raise Conflict("Payouts are not available on this Roost: Stripe is not configured.")
    opening = await transaction(partial(open_account, host=host))
    try:
        reference = opening.reference
        if reference is None:
            reference = await gateway.create_account(
                email=opening.email,
                country=opening.country,
                idempotency_key=f"payout-account-{opening.account_id}",
                metadata={"host_id": str(host.id)},
            )
            await transaction(
                partial(store_account_reference, account_id=opening.account_id, reference=reference)
            )
        link = await gateway.onboarding_link(
            reference, refresh_url=refresh_url, return_url=return_url
        )
    except PaymentDeclined as declined:
        raise PaymentFailed(str(declined) or "Stripe refused to open the account.") from None
    except ProviderUnavailable:
        log.warning("host %s: Stripe did not answer", host.id, exc_info=True)
        raise ServiceUnavailable("Stripe did not answer; try again.") from None

    async def read(session: AsyncSession) -> PayoutAccountRow:
        found = await account_of(session, host.id)
        assert found is not None  # noqa: S101 (made above; accounts are never deleted)
        return found

    return Onboarding(link, await transaction(read))


async def apply_account_state(session: AsyncSession, state: AccountState, *, now: datetime) -> bool:
    """What the provider says of an account: READY once the host can be paid into it (its
    waiting payouts then go out at the next claim). Answers whether the account is ours."""
    account = await session.scalar(
        select(PayoutAccount)
        .where(PayoutAccount.provider_account_id == state.reference)
        .with_for_update()
    )
    if account is None:
        return False
    account.details_submitted = state.details_submitted
    account.payouts_enabled = state.payouts_enabled
    if state.details_submitted and state.payouts_enabled:
        status = PayoutAccountStatus.READY
        account.ready_at = account.ready_at or now
    elif account.status == PayoutAccountStatus.ONBOARDING:
        status = PayoutAccountStatus.ONBOARDING
    else:
        status = PayoutAccountStatus.RESTRICTED
    if account.status != status:
        log.info("payout account %s: %s -> %s", account.id, account.status, status)
        account.status = status
    return True


# Payouts: made when due, claimed, sent, answered.


async def create_due(
    session: AsyncSession,
    *,
    now: datetime,
    policy: PayoutPolicy,
    unit_of: Callable[[str], int],
) -> int:
    """A payout for each booking that has none and is due one: COMPLETED for at least the
    delay (a booking ends COMPLETED at its check-out instant, ``bookings.complete_due``), or
    CANCELED with money the guest did not get back (its policy's share is the host's), the
    delay after the stay would have begun. Never while a refund of it waits for its answer:
    the refunds are part of the sum. Answers how many."""
    ended = now - policy.delay
    completed = (Booking.status == BookingStatus.COMPLETED) & (Booking.ends_at <= ended)
    # Cancellations are read a window back from the due date, so the scan stays short (the
    # index ix_booking_canceled_start); one not paid within it is left to a person.
    kept_paid = (
        select(Payment.id)
        .where(
            Payment.booking_id == Booking.id,
            Payment.status.in_(CAPTURED_PAYMENT),
            Payment.amount_minor > Payment.refunded_minor,
        )
        .exists()
    )
    canceled = (
        (Booking.status == BookingStatus.CANCELED)
        & Booking.starts_at.between(ended - CANCELED_WINDOW, ended)
        & kept_paid
    )
    due = (
        select(
            Booking.id,
            Booking.currency,
            Booking.night_prices_minor,
            Booking.cleaning_fee_minor,
            Booking.total_minor,
            Booking.check_in,
            Booking.check_out,
            Booking.status,
            Listing.host_id,
        )
        .join(Listing, Listing.id == Booking.listing_id)
        .where(
            completed | canceled,
            ~select(PayoutModel.id).where(PayoutModel.booking_id == Booking.id).exists(),
            ~in_flight(Booking.id),
        )
        .order_by(Booking.ends_at, Booking.id)
        .limit(policy.batch_size)
        .with_for_update(of=Booking, skip_locked=True)
    )
    bookings = (await session.execute(due)).all()
    if not bookings:
        return 0
    kept = dict(
        (
            await session.execute(
                select(Payment.booking_id, func.sum(Payment.amount_minor - Payment.refunded_minor))
                .where(
                    Payment.booking_id.in_([row.id for row in bookings]),
                    Payment.status.in_(CAPTURED_PAYMENT),
                )
                .group_by(Payment.booking_id)
            )
        ).all()
    )
    ids = (
        await session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence('payout', 'id')) FROM generate_series(1, :n)"
            ),
            {"n": len(bookings)},
        )
    ).all()
    for payout_id, row in zip(ids, bookings, strict=True):
        split = host_payout(
            nightly_subtotal=sum(row.night_prices_minor),
            cleaning_fee=row.cleaning_fee_minor,
            total=row.total_minor,
            kept=int(kept.get(row.id) or 0),
            host_fee_percent=policy.host_fee_percent,
            unit=unit_of(row.currency),
        )
        nothing = split.amount == 0  # nothing to send: settled as it is made
        await session.execute(
            insert(PayoutModel)
            .values(
                id=payout_id,
                booking_id=row.id,
                host_id=row.host_id,
                currency=row.currency,
                amount_minor=split.amount,
                host_fee_minor=split.host_fee,
                refunds_minor=split.refunds,
                # A stay is earned on its last day; a cancellation's share when it would
                # have begun.
                earned_on=row.check_out if row.status == BookingStatus.COMPLETED else row.check_in,
                status=PayoutStatus.PAID if nothing else PayoutStatus.PENDING,
                idempotency_key=transfer_key(payout_id, 0),
                available_at=None if nothing else now,
                paid_at=now if nothing else None,
            )
            .on_conflict_do_nothing(index_elements=[PayoutModel.booking_id])
        )
    return len(bookings)


@dataclass(frozen=True)
class PayoutCall:
    """A payout claimed for sending: what to ask the provider, under which key."""

    payout_id: int
    booking_id: int
    account: str
    amount_minor: int
    currency: str
    key: str
    look_first: bool = False  # the key may be forgotten: find the transfer before sending


async def claim_due(
    session: AsyncSession, *, now: datetime, policy: PayoutPolicy
) -> list[PayoutCall]:
    """(a) Due payouts of hosts whose account is ready, and those whose sender's lease lapsed
    (it died), become SENDING under a new lease; answers what to ask the provider."""
    ready = select(PayoutAccount.host_id).where(
        PayoutAccount.status == PayoutAccountStatus.READY,
        PayoutAccount.provider_account_id.is_not(None),
    )
    claimable = (
        select(PayoutModel)
        .where(
            PayoutModel.host_id.in_(ready),
            # An open dispute holds the booking's payout until an admin resolves it.
            ~select(Dispute.id)
            .where(
                Dispute.booking_id == PayoutModel.booking_id, Dispute.status == DisputeStatus.OPEN
            )
            .exists(),
            or_(
                and_(
                    PayoutModel.status.in_((PayoutStatus.PENDING, PayoutStatus.FAILED)),
                    PayoutModel.available_at <= now,
                ),
                and_(PayoutModel.status == PayoutStatus.SENDING, PayoutModel.lease_until < now),
            ),
        )
        .order_by(PayoutModel.id)
        .limit(policy.batch_size)
        .with_for_update(of=PayoutModel, skip_locked=True)
    )
    payouts = (await session.scalars(claimable)).all()
    if not payouts:
        return []
    rows = await session.execute(
        select(PayoutAccount.host_id, PayoutAccount.provider_account_id).where(
            PayoutAccount.host_id.in_({payout.host_id for payout in payouts})
        )
    )
    accounts = {host_id: str(reference) for host_id, reference in rows}
    calls = []
    for payout in payouts:
        if payout.status == PayoutStatus.SENDING:
            log.warning("payout %s: its sender's lease lapsed; asked again", payout.id)
        payout.status = PayoutStatus.SENDING
        payout.lease_until = now + policy.lease
        payout.attempts += 1
        payout.key_sent_at = payout.key_sent_at or now
        calls.append(
            PayoutCall(
                payout_id=payout.id,
                booking_id=payout.booking_id,
                account=accounts[payout.host_id],
                amount_minor=payout.amount_minor,
                currency=payout.currency,
                key=payout.idempotency_key,
                look_first=now - payout.key_sent_at >= KEY_TRUSTED_FOR,
            )
        )
    return calls


async def _claimed(session: AsyncSession, payout_id: int, key: str) -> PayoutModel | None:
    """The payout, locked, if it is still SENDING under ``key``: an answer to an older claim
    (a later one already recorded) changes nothing."""
    payout = await session.get(PayoutModel, payout_id, with_for_update=True)
    if payout is None or payout.status != PayoutStatus.SENDING or payout.idempotency_key != key:
        return None
    return payout


def _paid(session: AsyncSession, payout: PayoutModel, transfer_id: str, *, now: datetime) -> None:
    payout.status = PayoutStatus.PAID
    payout.provider_transfer_id = transfer_id
    payout.paid_at = now
    payout.lease_until = None
    payout.available_at = None
    payout.last_error = None
    sent = PayoutSent(
        payout.id, payout.booking_id, payout.host_id, payout.amount_minor, payout.currency
    )
    emit(session, sent, now=now)


async def record_paid(
    session: AsyncSession, *, payout_id: int, key: str, transfer_id: str, now: datetime
) -> None:
    """The provider made the transfer: so the payout is paid, whichever claim asked for it
    (another worker may have claimed it since, and be waiting to ask again)."""
    payout = await session.get(PayoutModel, payout_id, with_for_update=True)
    if payout is None:
        return
    if payout.status in UNPAID_PAYOUT:
        _paid(session, payout, transfer_id, now=now)
    elif payout.provider_transfer_id != transfer_id:
        log.error(
            "payout %s: a second transfer %s (paid by %s, key %s); for a person to reverse",
            payout_id, transfer_id, payout.provider_transfer_id, key,
        )  # fmt: skip


async def record_unanswered(
    session: AsyncSession, *, payout_id: int, key: str, error: str, now: datetime
) -> None:
    """No answer: whether money moved is unknown, so the next try keeps the key."""
    payout = await _claimed(session, payout_id, key)
    if payout is None:
        return
    payout.status = PayoutStatus.PENDING
    payout.lease_until = None
    payout.available_at = now + retry_delay(payout.attempts)
    payout.last_error = error[:2_000]


async def record_declined(
    session: AsyncSession,
    *,
    payout_id: int,
    key: str,
    reason: str,
    now: datetime,
    policy: PayoutPolicy,
) -> None:
    """Refused, so nothing moved: tried again later under a new key, or left to a person."""
    payout = await _claimed(session, payout_id, key)
    if payout is None:
        return
    payout.status = PayoutStatus.FAILED
    payout.declines += 1
    payout.idempotency_key = transfer_key(payout.id, payout.declines)
    payout.key_sent_at = None
    payout.lease_until = None
    payout.last_error = reason[:2_000]
    if payout.declines < policy.max_declines:
        payout.available_at = now + decline_delay(payout.declines)
    else:
        payout.available_at = None
        log.error("payout %s: refused %s times; left for a person", payout.id, payout.declines)


async def send(
    transaction: Transaction,
    gateway: PayoutGateway,
    call: PayoutCall,
    *,
    clock: Callable[[], datetime],
    policy: PayoutPolicy,
) -> None:
    """(b) The transfer, asked for with no transaction open (or, when its key may be forgotten,
    found first); (c) the answer recorded. Anything else that goes wrong leaves the payout
    SENDING for its lease to lapse and be asked again."""
    group = f"booking-{call.booking_id}"
    try:
        transfer_id = await _transfer_of(gateway, call, group)
        if transfer_id is None:
            transfer_id = await gateway.transfer(
                account=call.account,
                amount_minor=call.amount_minor,
                currency=call.currency,
                idempotency_key=call.key,
                group=group,
                metadata={"payout_id": str(call.payout_id), "booking_id": str(call.booking_id)},
            )
    except PaymentDeclined as declined:
        log.warning("payout %s: refused: %s", call.payout_id, declined)
        reason = str(declined) or "The provider refused the transfer."
        await transaction(
            partial(
                record_declined,
                payout_id=call.payout_id,
                key=call.key,
                reason=reason,
                now=clock(),
                policy=policy,
            )
        )
        return
    except ProviderUnavailable as unavailable:
        log.warning("payout %s: no answer: %s", call.payout_id, unavailable)
        await transaction(
            partial(
                record_unanswered,
                payout_id=call.payout_id,
                key=call.key,
                error=str(unavailable) or "The provider did not answer.",
                now=clock(),
            )
        )
        return
    await transaction(
        partial(
            record_paid,
            payout_id=call.payout_id,
            key=call.key,
            transfer_id=transfer_id,
            now=clock(),
        )
    )


async def _transfer_of(gateway: PayoutGateway, call: PayoutCall, group: str) -> str | None:
    """A transfer already made for the payout, looked for only when its key may be forgotten
    (first sent a day ago, by a worker whose answer was never recorded). A refused search is
    no refusal of the transfer: it is no answer, and the payout is asked about again later."""
    if not call.look_first:
        return None
    try:
        found = await gateway.find_transfer(group=group, payout_id=str(call.payout_id))
    except PaymentDeclined as refused:
        raise ProviderUnavailable(f"Transfers could not be searched: {refused}") from refused
    if found is not None:
        log.warning("payout %s: its transfer %s was made; recorded now", call.payout_id, found)
    return found


async def retry_payout(
    session: AsyncSession, *, admin: Actor, payout_id: int, now: datetime
) -> PayoutModel:
    """An admin puts a FAILED payout (refused by the provider, perhaps too often to be tried
    again) back for the next worker pass: PENDING and due now. Its key stays the one its
    last refusal gave it (``transfer_key``): nothing moved under the old one, and a worker
    that claims it twice asks under the same key, so the host is paid once. CONFLICT for
    any other state: a payout SENDING or PAID may have moved money already."""
    if not is_admin(admin):
        raise Forbidden("Only admins retry payouts.")
    payout = await session.get(PayoutModel, payout_id, with_for_update=True)
    if payout is None:
        raise NotFound("No such payout.")
    if payout.status != PayoutStatus.FAILED:
        raise Conflict(f"Only a failed payout is retried; this one is {payout.status.lower()}.")
    before = {"status": payout.status, "available_at": _iso(payout.available_at)}
    payout.status = PayoutStatus.PENDING
    payout.available_at = now
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="payout.retry",
        subject=("Payout", payout.id),
        before=before,
        after={"status": payout.status, "available_at": _iso(now)},
        now=now,
    )
    return payout


async def reduce_unsent(
    session: AsyncSession, *, booking_id: int, amount: int, now: datetime
) -> tuple[int, int]:
    """The booking's payout, not yet sent (PENDING or FAILED), made ``amount`` smaller (an
    admin's decision on a dispute); one brought to nothing is settled as ``create_due``
    settles a payout of nothing. CONFLICT when there is none yet (made once the stay is over
    and the payout delay has passed) or it is being sent or was sent; BAD_USER_INPUT past its
    amount. Answers the amount before and after."""
    payout = await session.scalar(
        select(PayoutModel).where(PayoutModel.booking_id == booking_id).with_for_update()
    )
    if payout is None:
        raise Conflict("This booking has no payout yet; adjust it once the stay's is made.")
    if payout.status not in (PayoutStatus.PENDING, PayoutStatus.FAILED):
        raise Conflict(f"This booking's payout is {payout.status.lower()}: it cannot change.")
    if amount > payout.amount_minor:
        raise InvalidInput.field("amount", "must be at most the payout's amount")
    before = payout.amount_minor
    payout.amount_minor -= amount
    if payout.amount_minor == 0:
        payout.status = PayoutStatus.PAID
        payout.paid_at = now
        payout.available_at = None
    await session.flush()
    return before, payout.amount_minor


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# Stripe's word on accounts and transfers (services/stripe_webhooks.py).


async def on_account_updated(
    session: AsyncSession, account: Mapping[str, Any], now: datetime, _: object
) -> bool:
    return await apply_account_state(session, account_state(account), now=now)


async def _payout_of_transfer(
    session: AsyncSession, transfer: Mapping[str, Any]
) -> PayoutModel | None:
    named = (transfer.get("metadata") or {}).get("payout_id")
    query = select(PayoutModel).with_for_update()
    if isinstance(named, str) and named.isdigit():
        return await session.scalar(query.where(PayoutModel.id == int(named)))
    return await session.scalar(query.where(PayoutModel.provider_transfer_id == transfer.get("id")))


async def on_transfer_created(
    session: AsyncSession, transfer: Mapping[str, Any], now: datetime, _: object
) -> bool:
    """A transfer Stripe made for a payout: the answer a worker may have lost. Believed only
    when it went to the host's account, in the payout's amount and currency."""
    payout = await _payout_of_transfer(session, transfer)
    if payout is None:
        return False
    destination = await session.scalar(
        select(PayoutAccount.provider_account_id).where(PayoutAccount.host_id == payout.host_id)
    )
    currency = str(transfer.get("currency", "")).upper()
    matches = (
        transfer.get("destination") == destination
        and currency == payout.currency
        and from_stripe(int(transfer.get("amount", -1)), currency) == payout.amount_minor
    )
    if not matches:
        log.error("payout %s: Stripe's transfer %s is not ours", payout.id, transfer.get("id"))
        return True
    if payout.status in UNPAID_PAYOUT:
        _paid(session, payout, str(transfer["id"]), now=now)
    elif payout.provider_transfer_id != transfer.get("id"):
        log.error(
            "payout %s: a second transfer %s (paid by %s); for a person to reverse",
            payout.id, transfer.get("id"), payout.provider_transfer_id,
        )  # fmt: skip
    return True


async def on_transfer_reversed(
    session: AsyncSession, transfer: Mapping[str, Any], now: datetime, _: object
) -> bool:
    """A transfer taken back at Stripe (from its dashboard: Roost never reverses one). The
    payout is REVERSED and stays so: what to pay the host instead is for a person to decide."""
    payout = await _payout_of_transfer(session, transfer)
    if payout is None:
        return False
    if payout.status == PayoutStatus.PAID and payout.provider_transfer_id == transfer.get("id"):
        payout.status = PayoutStatus.REVERSED
        payout.last_error = (
            f"Reversed at Stripe: {transfer.get('amount_reversed')} of {transfer.get('amount')}"
        )
        log.warning("payout %s: its transfer %s was reversed", payout.id, transfer.get("id"))
    return True


# Reads.

_ROW = tuple(getattr(PayoutModel, name) for name in PayoutRow._fields)


@dataclass(frozen=True)
class PayoutPage:
    payouts: list[PayoutRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


@dataclass(frozen=True)
class PayoutFilter:
    status: str | None = None
    start: date | None = None  # earned on or after this day
    end: date | None = None  # earned on or before this day


async def list_payouts(
    session: AsyncSession,
    *,
    host_id: int | None,
    where: PayoutFilter = PayoutFilter(),
    first: int,
    after: str | None,
) -> PayoutPage:
    """A host's payouts, or everyone's (``host_id`` None: for admins), newest first, by id:
    ids are given in the order payouts are made and never repeat."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    if where.start and where.end and where.end < where.start:
        raise InvalidInput.field("to", "must be on or after from")
    conditions: list[ColumnElement[bool]] = []
    if host_id is not None:
        conditions.append(PayoutModel.host_id == host_id)
    if where.status is not None:
        conditions.append(PayoutModel.status == where.status)
    if where.start is not None:
        conditions.append(PayoutModel.earned_on >= where.start)
    if where.end is not None:
        conditions.append(PayoutModel.earned_on <= where.end)
    query = select(*_ROW).where(*conditions)
    if after:
        (before,) = cursors.unpack(after, size=1, problem="is not a cursor of this list")
        if not isinstance(before, int) or isinstance(before, bool):
            raise InvalidInput.field("after", "is not a cursor of this list")
        query = query.where(PayoutModel.id < before)
    rows = (await session.execute(query.order_by(PayoutModel.id.desc()).limit(first + 1))).all()
    page = [PayoutRow._make(row) for row in rows[:first]]
    total = select(func.count()).select_from(PayoutModel).where(*conditions)
    return PayoutPage(page, [cursors.pack(row.id) for row in page], len(rows) > first, total)


async def payouts_by_id(session: AsyncSession, ids: list[int]) -> dict[int, PayoutRow]:
    rows = (await session.execute(select(*_ROW).where(PayoutModel.id.in_(ids)))).all()
    return {row.id: PayoutRow._make(row) for row in rows}


@dataclass(frozen=True)
class CurrencyEarnings:
    currency: str
    paid: int
    pending: int
    host_fees: int
    payouts: int


async def earnings(
    session: AsyncSession, *, host_id: int, start: date, end: date
) -> list[CurrencyEarnings]:
    """A host's payouts for stays that ended from ``start`` to ``end`` (both included), summed
    per currency: paid, still to be paid, and Roost's host fees on them. Reversed payouts
    count in neither sum (nor their fees)."""
    if end < start:
        raise InvalidInput.field("to", "must be on or after from")
    if (end - start).days >= MAX_EARNINGS_DAYS:
        raise InvalidInput.field("to", f"must be less than {MAX_EARNINGS_DAYS} days after from")
    paid = PayoutModel.status == PayoutStatus.PAID
    unpaid = PayoutModel.status.in_(UNPAID_PAYOUT)
    counted = PayoutModel.status != PayoutStatus.REVERSED
    rows = await session.execute(
        select(
            PayoutModel.currency,
            func.sum(case((paid, PayoutModel.amount_minor), else_=0)),
            func.sum(case((unpaid, PayoutModel.amount_minor), else_=0)),
            func.sum(case((counted, PayoutModel.host_fee_minor), else_=0)),
            func.count().filter(counted),
        )
        .where(
            PayoutModel.host_id == host_id,
            PayoutModel.earned_on >= start,
            PayoutModel.earned_on <= end,
        )
        .group_by(PayoutModel.currency)
        .order_by(PayoutModel.currency)
    )
    return [
        CurrencyEarnings(currency, int(paid_sum), int(pending), int(fees), int(count))
        for currency, paid_sum, pending, fees, count in rows
    ]
