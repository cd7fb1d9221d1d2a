"""Checkout: bookings and their money together. services/bookings.py holds the rules of a
stay, services/payments.py those of its money; this module alone imports both.

A change that moves or holds money runs in three steps, and no provider is asked while a
transaction of ours holds a lock:

(a) ``confirm_test_payment``, ``answer_request``, ``cancel_booking``, ``modify_booking`` and
    ``expire_due`` run in the booking's transaction, under its lock: they check the rules, do
    what does not wait for the provider, and record the movement REQUESTED with its effect.
    They answer the ``ProviderCall`` to make once that commits (None: nothing to ask).
(b) ``settle`` asks the provider with no transaction open, then
(c) ``apply`` records the answer and completes the change, in a second short transaction
    under the booking's lock again. A crash between (a) and (c) leaves the movement REQUESTED:
    the worker asks again (``payments.claim_unanswered``) and settles it the same way.

What waits for the answer: a capture confirms the booking, and a longer stay is the
booking's, only once the money is taken. What does not: a cancellation (or an expiry) and a
shorter stay take effect in (a); their release or refund completes in (c). While a movement
waits, other money changes of the booking answer CONFLICT (``payments.refuse_in_flight``).

A refund is done only when the provider says it succeeded. One it took and has not finished
(Stripe's ``pending``, PayPal's ``PENDING``) stays REQUESTED with the provider's id for it, the
payment unmoved, until its webhook (``provider_refund``) or a worker asking by that id applies
the end of it through ``apply``, as any answer. A refund that fails moves nothing and is left
FAILED in the ledger, with the reason, for a person. Refunds made at the provider without us
(its dashboard) are recorded by ``refunded_elsewhere``, once, never past what was captured.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.rules import is_admin
from db.models import Booking, Listing, Payment, PaymentOperation
from db.rows import Actor, BookingRow, ListingRow, PaymentRow
from db.states import (
    ACTIVE_BOOKING,
    CAPTURED_PAYMENT,
    BookingStatus,
    OperationKind,
    OperationStatus,
    Party,
    PaymentProvider,
    PaymentStatus,
)
from gateways.payments import (
    CaptureMethod,
    PaymentDeclined,
    ProviderReport,
    ProviderUnavailable,
    Reported,
)
from services import audit, bookings, exchange_rates, payments
from services.bookings import BookingRules, Stay
from services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentFailed,
    ServiceUnavailable,
)
from services.money import Money, to_minor
from services.payments import Gateways, ProviderCall
from services.pricing import Price
from services.validation import has_control_characters, kenyan_msisdn

log = logging.getLogger("roost.checkout")

T = TypeVar("T")


class Transaction(Protocol):
    """Runs ``work`` in a unit of work of its own (``Database.transaction``)."""

    def __call__(self, work: Callable[[AsyncSession], Awaitable[T]], /) -> Awaitable[T]: ...


class Effect(StrEnum):
    """What a movement's answer completes on the booking (kept in the ledger entry)."""

    CONFIRM = "CONFIRM"
    MODIFY = "MODIFY"


@dataclass(frozen=True)
class Outcome:
    """What applying an answer leaves to do: another movement to ask for, and the error the
    client gets (once this has committed)."""

    follow_up: ProviderCall | None = None
    refusal: DomainError | None = None


# Starting a payment.


@dataclass(frozen=True)
class PaymentOpening:
    """A PENDING payment, to create with its provider once the transaction commits."""

    payment_id: int
    provider: str
    amount_minor: int
    currency: str
    description: str
    key: str
    reference: str | None
    capture: CaptureMethod
    metadata: dict[str, str]
    now: datetime
    # The payment it replaces, to cancel with its provider first.
    release: ProviderCall | None = None


@dataclass(frozen=True)
class StartedPayment:
    payment_id: int
    client_secret: str | None
    redirect_url: str | None


async def start_payment(
    session: AsyncSession,
    *,
    actor: Actor,
    booking_id: int,
    provider: str,
    display_currency: str,
    gateways: Gateways,
    now: datetime,
    phone: str | None = None,
) -> PaymentOpening:
    """(a) A payment of the booking's total, for the guest to complete with the provider, if
    it takes the booking's currency. Asking again while one is open answers that one. The
    rate from the booking's currency to ``display_currency`` (the guest's) is frozen then.
    ``phone``: the number M-Pesa prompts (the guest's profile phone unless they gave one)."""
    booking, _ = await bookings.booking_for_change(session, actor=actor, booking_id=booking_id)
    if booking.guest_id != actor.id:
        raise Forbidden("Only the guest pays for a booking.")
    # A request to book is held on the card until the host answers.
    capture: CaptureMethod = "automatic" if booking.instant_book else "manual"
    gateway = gateways.taking(provider, booking.currency, capture=capture)
    provider = gateway.provider
    metadata = {"booking_id": str(booking.id)}
    if provider == PaymentProvider.MPESA:
        metadata["phone_number"] = _mpesa_payer(phone)
    bookings.refuse_lapsed(booking, now)
    await payments.refuse_in_flight(session, booking.id)
    payment = await payments.live_payment(session, booking.id, lock=True)
    if payment is not None and payment.status != PaymentStatus.PENDING:
        raise Conflict("This booking is paid already.")
    release = None
    if payment is None or payment.provider != provider:
        release = await payments.let_go(session, payment, refund=0, now=now)  # switched
        payment = await payments.open_payment(
            session,
            booking_id=booking.id,
            provider=provider,
            currency=booking.currency,
            amount=booking.total_minor,
        )
        await exchange_rates.freeze_display_rate(session, booking, display_currency)
    if payments.prompts_the_payer(gateway) and payment.provider_reference is None:
        payments.claim_prompt(payment, now=now)
    return PaymentOpening(
        payment_id=payment.id,
        provider=payment.provider,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        description=f"Roost booking {booking.id}",
        key=payments.creation_key(payment.id),
        reference=payment.provider_reference,
        capture=capture,
        metadata={**metadata, "payment_id": str(payment.id)},
        now=now,
        release=release,
    )


def _mpesa_payer(phone: str | None) -> str:
    """The number M-Pesa prompts to pay, as it takes it."""
    if not phone:
        raise InvalidInput.field("phoneNumber", "is needed to pay with M-Pesa")
    msisdn = kenyan_msisdn(phone)
    if msisdn is None:
        problem = "is not a Kenyan mobile number, like 0712345678 or +254712345678"
        raise InvalidInput.field("phoneNumber", problem)
    return msisdn


async def create_with_provider(
    transaction: Transaction, gateways: Gateways, opening: PaymentOpening
) -> StartedPayment:
    """(b) The provider creates the payment (again, under the same key, for a repeated start);
    (c) its reference is kept."""
    await settle(transaction, gateways, opening.release, clock=lambda: opening.now)
    gateway = gateways.get(opening.provider)
    prompts = payments.prompts_the_payer(gateway)
    if opening.reference is not None and prompts:
        # Prompted already: prompting again could take the money twice. The guest answers
        # the prompt on their phone, or lets it lapse and pays anew.
        return StartedPayment(opening.payment_id, None, None)
    try:
        intent = await gateway.create(
            amount_minor=opening.amount_minor,
            currency=opening.currency,
            description=opening.description,
            idempotency_key=opening.key,
            capture=opening.capture,
            metadata=opening.metadata,
        )
    except PaymentDeclined as declined:
        if prompts:
            await transaction(partial(payments.drop_prompt_claim, payment_id=opening.payment_id))
        raise PaymentFailed(str(declined) or None) from None
    except ProviderUnavailable:
        # A prompt may have reached the phone all the same: its claim stands until it lapses.
        log.warning("payment %s: the provider did not answer", opening.payment_id, exc_info=True)
        raise ServiceUnavailable("The payment provider did not answer; try again.") from None
    if opening.reference is None:
        await transaction(
            partial(
                payments.store_reference,
                payment_id=opening.payment_id,
                reference=intent.reference,
                now=opening.now,
                payer=opening.metadata.get("phone_number"),
            )
        )
    return StartedPayment(opening.payment_id, intent.client_secret, intent.redirect_url)


# (a): the changes that move money.


async def confirm_test_payment(
    session: AsyncSession,
    *,
    actor: Actor,
    payment_id: int,
    succeed: bool,
    now: datetime,
    rules: BookingRules,
) -> ProviderCall | None:
    """What the TEST provider's checkout does: the guest pays, or the card is declined. Paid,
    an instant booking asks for the capture that confirms it; a request goes to the host."""
    booking_id = await session.scalar(select(Payment.booking_id).where(Payment.id == payment_id))
    found = await bookings.lock_booking(session, booking_id) if booking_id is not None else None
    if found is None or found[0].guest_id != actor.id:
        raise NotFound("No such payment.")
    booking = found[0]
    payment = await payments.lock_payment(session, payment_id)
    if payment is None:
        raise NotFound("No such payment.")
    if payment.provider != PaymentProvider.TEST:
        raise InvalidInput.field("paymentId", "is not a TEST payment")
    if payment.status != PaymentStatus.PENDING:
        if succeed and payment.status in (PaymentStatus.AUTHORIZED, *CAPTURED_PAYMENT):
            return None  # confirmed already: the same answer again
        raise Conflict("This payment is not waiting for confirmation.")
    if not succeed:
        payments.fail(session, payment, reason="The TEST payment was declined.", now=now)
        return None
    bookings.refuse_lapsed(booking, now)
    await payments.refuse_in_flight(session, booking.id)
    payments.authorize(session, payment, now=now)
    if booking.instant_book:
        return await payments.request_capture(
            session, payment, effect={"do": Effect.CONFIRM}, now=now
        )
    bookings.request_to_host(session, booking, now=now, rules=rules)
    return None


async def provider_says(
    session: AsyncSession,
    *,
    payment_id: int,
    report: ProviderReport,
    now: datetime,
    rules: BookingRules,
) -> ProviderCall | None:
    """The provider's word on a payment the guest completes with it (what its webhook says, or
    what a worker found by asking), applied as the TEST checkout applies the guest's: held, a
    request goes to the host (an instant booking asks for the capture); taken, an instant
    booking is confirmed; declined, the payment failed. Believed only when amount and currency
    are ours; a payment never moves backwards, so a late or repeated word changes nothing."""
    booking_id = await session.scalar(select(Payment.booking_id).where(Payment.id == payment_id))
    found = await bookings.lock_booking(session, booking_id) if booking_id is not None else None
    payment = await payments.lock_payment(session, payment_id)
    if found is None or payment is None:
        return None
    booking = found[0]
    # A report naming no amount is about a request of ours, made for the payment's amount.
    amount = payment.amount_minor if report.amount_minor is None else report.amount_minor
    if (amount, report.currency) != (payment.amount_minor, payment.currency):
        log.warning(
            "payment %s: the provider reports %s %s, not %s %s; ignored", payment.id,
            report.amount_minor, report.currency, payment.amount_minor, payment.currency,
        )  # fmt: skip
        return None
    if payment.status in payments.LET_GO:
        return await _after_let_go(session, payment, report, now=now)
    if await session.scalar(select(payments.in_flight(booking.id))):
        return None  # the movement asked for decides; its answer is applied on its own
    if payment.status == PaymentStatus.AUTHORIZED:
        # Only a cancel ends a hold: a declined attempt reported now is older than the hold
        # (a webhook arriving late), since a held payment is never declined afterwards.
        if report.state == Reported.CANCELED:
            lapsed = report.reason or "The hold on the payment lapsed at the provider."
            payments.fail(session, payment, reason=lapsed, now=now)
        return None
    if payment.status != PaymentStatus.PENDING or report.state == Reported.WAITING:
        return None
    if report.state in (Reported.FAILED, Reported.CANCELED):
        reason = report.reason or (
            "The payment was declined."
            if report.state == Reported.FAILED
            else "The payment was canceled at the provider."
        )
        payments.fail(session, payment, reason=reason, now=now)
        if report.state == Reported.FAILED:  # the guest pays again, on a payment of its own
            return await payments.request_close(session, payment, now=now)
        return None
    if booking.status != BookingStatus.PENDING:
        log.error("payment %s: paid for a %s booking", payment.id, booking.status)
        return None
    payments.authorize(session, payment, now=now)
    if report.state == Reported.CAPTURED:
        if not booking.instant_book:
            log.error("payment %s: captured before the host answered", payment.id)
        payments.record_capture(session, payment, reference=report.reference or "", now=now)
        bookings.confirm(session, booking, now)
        return None
    if booking.instant_book:
        return await payments.request_capture(
            session, payment, effect={"do": Effect.CONFIRM}, now=now
        )
    bookings.request_to_host(session, booking, now=now, rules=rules)
    return None


async def _after_let_go(
    session: AsyncSession, payment: Payment, report: ProviderReport, *, now: datetime
) -> ProviderCall | None:
    """The provider's word on a payment Roost let go: taken all the same (the guest paid as
    the booking lapsed or was cancelled), it is all given back; ended there too, nothing is
    left to ask; still open, the worker asks again at ``check_at``."""
    if report.state == Reported.CAPTURED:
        payment.check_at = None
        return await payments.refund_stray(
            session, payment, reference=report.reference or "", now=now
        )
    if report.state in (Reported.CANCELED, Reported.FAILED):
        payment.check_at = None
    elif payment.check_at is not None:
        log.warning("payment %s: let go, but %s at the provider", payment.id, report.state)
    return None


async def answer_request(
    session: AsyncSession,
    *,
    actor: Actor,
    booking_id: int,
    accept: bool,
    reason: str | None,
    now: datetime,
) -> ProviderCall | None:
    """The host accepts (the held payment is captured, then the booking confirmed) or
    declines (the booking is canceled and the hold released)."""
    booking, listing = await bookings.booking_for_change(
        session, actor=actor, booking_id=booking_id
    )
    if actor.id != listing.host_id:
        raise Forbidden("Only the listing's host answers a booking request.")
    reason = bookings.check_text(reason, "reason", bookings.MAX_REASON)
    await payments.refuse_in_flight(session, booking.id)
    payment = await payments.live_payment(session, booking.id, lock=True)
    if (
        booking.status != BookingStatus.PENDING
        or payment is None
        or payment.status != PaymentStatus.AUTHORIZED
    ):
        raise Conflict("This booking is not waiting for your answer.")
    if booking.expires_at is not None and booking.expires_at <= now:
        raise Conflict("This request has expired.")
    if accept:
        return await payments.request_capture(
            session, payment, effect={"do": Effect.CONFIRM}, now=now
        )
    reason = reason or "Declined by the host."
    return await _cancel(session, booking, listing, payment, by=Party.HOST, reason=reason, now=now)


def refund_on_cancel(
    booking: Booking | BookingRow,
    listing: Listing | ListingRow,
    payment: Payment | PaymentRow | None,
    *,
    by: Party,
    now: datetime,
    gateways: Gateways | None,
) -> int:
    """What cancelling now refunds: what the policy gives back, as the payment's provider can
    move it (``payments.refundable``; None: in any minor unit)."""
    paid = payments.captured_balance(payment)
    due = bookings.refund_due(booking, listing, paid=paid, by=by, now=now)
    if payment is None or gateways is None:
        return due
    step = gateways.amount_step(payment.provider, payment.currency)
    return payments.refundable(due, balance=paid, step=step)


async def _cancel(
    session: AsyncSession,
    booking: Booking,
    listing: Listing,
    payment: Payment | None,
    *,
    by: Party,
    reason: str | None,
    now: datetime,
    gateways: Gateways | None = None,
) -> ProviderCall | None:
    refund = refund_on_cancel(booking, listing, payment, by=by, now=now, gateways=gateways)
    await bookings.cancel(session, booking, by=by, reason=reason, refund=refund, now=now)
    return await payments.let_go(session, payment, refund=refund, now=now)


async def cancel_booking(
    session: AsyncSession,
    *,
    actor: Actor,
    booking_id: int,
    reason: str | None,
    gateways: Gateways,
    now: datetime,
) -> ProviderCall | None:
    """By the guest, with the refund its policy gives; by the host or an admin, refunded in
    full. The booking is canceled at once; the refund (or release) follows."""
    booking, listing = await bookings.booking_for_change(
        session, actor=actor, booking_id=booking_id
    )
    reason = bookings.check_text(reason, "reason", bookings.MAX_REASON)
    if booking.status not in ACTIVE_BOOKING:
        raise Conflict(f"A {booking.status.lower()} booking cannot be canceled.")
    await payments.refuse_in_flight(session, booking.id)
    payment = await payments.live_payment(session, booking.id, lock=True)
    by = bookings.role_of(actor, booking, listing)
    return await _cancel(
        session, booking, listing, payment, by=by, reason=reason, now=now, gateways=gateways
    )


def _modify_effect(stay: Stay, price: Price) -> dict[str, Any]:
    return {
        "do": Effect.MODIFY,
        "check_in": stay.check_in.isoformat(),
        "check_out": stay.check_out.isoformat(),
        "guests": stay.guests,
        "currency": price.currency,
        "night_prices": list(price.night_prices),
        "cleaning_fee": price.cleaning_fee,
        "service_fee": price.service_fee,
        "taxes": price.taxes,
    }


def _modification(effect: dict[str, Any]) -> tuple[Stay, Price]:
    stay = Stay(
        date.fromisoformat(effect["check_in"]),
        date.fromisoformat(effect["check_out"]),
        effect["guests"],
    )
    price = Price(
        currency=effect["currency"],
        night_prices=tuple(effect["night_prices"]),
        cleaning_fee=effect["cleaning_fee"],
        service_fee=effect["service_fee"],
        taxes=effect["taxes"],
    )
    return stay, price


async def modify_booking(
    session: AsyncSession,
    *,
    actor: Actor,
    booking_id: int,
    stay: Stay,
    rules: BookingRules,
    gateways: Gateways,
    now: datetime,
) -> ProviderCall | None:
    """New dates or guests, if the nights are free. A dearer stay is charged first and becomes
    the booking's once paid; a cheaper one is the booking's at once, and the difference is
    refunded. A payment not captured yet was priced for the old stay: it is let go."""
    listing_id = await session.scalar(select(Booking.listing_id).where(Booking.id == booking_id))
    if listing_id is not None:
        await bookings.lock_calendar(session, listing_id, bookable=False)
    booking, listing = await bookings.booking_for_change(
        session, actor=actor, booking_id=booking_id
    )
    bookings.check_changeable(booking, listing, actor=actor, now=now)
    await payments.refuse_in_flight(session, booking.id)
    payment = await payments.live_payment(session, booking.id, lock=True)
    bookings.check_stay(listing, stay, now=now, rules=rules)
    await bookings.refuse_taken(session, listing.id, stay, except_booking=booking.id)
    price = await bookings.price_of_stay(session, listing, stay, rules)
    difference = price.total - booking.total_minor
    captured = payment is not None and payment.status in CAPTURED_PAYMENT
    if payment is not None and captured and difference > 0:
        # Named by its place in the ledger: a rerun of this transaction repeats the key, while
        # a later change, even back to earlier dates, gets its own.
        key = await payments.next_key(session, payment, "change")
        effect = _modify_effect(stay, price)
        return await payments.request_charge(
            session, payment, amount=difference, key=key, effect=effect, now=now
        )
    await bookings.change_stay(session, booking, listing, stay, price, now=now)
    if payment is None:
        return None
    if captured:
        if difference >= 0:
            return None
        key = await payments.next_key(session, payment, "change")
        refund = payments.refundable(
            -difference,
            balance=payments.captured_balance(payment),
            step=gateways.amount_step(payment.provider, payment.currency),
        )
        return await payments.request_refund(session, payment, amount=refund, key=key, now=now)
    if payment.status == PaymentStatus.AUTHORIZED:
        # A request the host has not answered: the guest pays the new stay before it goes to
        # the host again.
        booking.expires_at = now + rules.payment_window
    return await payments.let_go(session, payment, refund=0, now=now)


async def expire_due(
    session: AsyncSession, *, now: datetime, limit: int = 100
) -> tuple[int, list[ProviderCall]]:
    """Cancels PENDING bookings whose hold lapsed (unpaid, or unanswered by the host); answers
    how many, and the releases to ask for once this commits. A booking whose money waits for
    an answer is left to that answer."""
    rows = (
        await session.execute(
            select(Booking, Listing)
            .join(Listing, Listing.id == Booking.listing_id)
            .where(
                Booking.status == BookingStatus.PENDING,
                Booking.expires_at <= now,
                ~payments.in_flight(Booking.id),
            )
            .order_by(Booking.expires_at)
            .limit(limit)
            .with_for_update(of=Booking, skip_locked=True)
        )
    ).all()
    calls = []
    for booking, listing in rows:
        payment = await payments.live_payment(session, booking.id, lock=True)
        answered_late = payment is not None and payment.status == PaymentStatus.AUTHORIZED
        reason = "The host did not answer in time." if answered_late else "Not paid in time."
        call = await _cancel(
            session, booking, listing, payment, by=Party.SYSTEM, reason=reason, now=now
        )
        if call is not None:
            calls.append(call)
    return len(rows), calls


# The provider's word on refunds (its webhooks).


async def provider_refund(
    session: AsyncSession,
    *,
    provider: str,
    reference: str,
    key: str | None,
    amount_minor: int,
    currency: str,
    answer: payments.Answer,
    now: datetime,
) -> bool:
    """What the provider says of a refund: applied as the answer to asking for it, if it is
    ours and of the amount and currency we asked (once; a late or repeated word changes
    nothing). Answers whether it is one of ours."""
    entry = await payments.find_refund(session, provider=provider, reference=reference, key=key)
    if entry is None:
        return False
    if (amount_minor, currency) != (entry.amount_minor, entry.currency):
        log.warning(
            "refund %s of payment %s: the provider reports %s %s, not %s %s; ignored",
            reference, entry.payment_id, amount_minor, currency, entry.amount_minor,
            entry.currency,
        )  # fmt: skip
        return True
    operation = await session.get(PaymentOperation, entry.operation_id)
    if operation is not None and operation.status == OperationStatus.SUCCEEDED and answer.declined:
        # A refund can fail after it succeeded (the guest's bank sent it back): the money is
        # with us again, and the guest is owed it. For people to look into.
        log.error(
            "refund %s of payment %s failed after it succeeded: %s",
            reference, entry.payment_id, answer.declined,
        )  # fmt: skip
        return True
    await apply(session, operation_id=entry.operation_id, answer=answer, now=now)
    return True


async def refunded_elsewhere(
    session: AsyncSession,
    *,
    payment_id: int,
    key: str,
    reference: str,
    now: datetime,
    amount: int | None = None,
    refunded_in_all: int | None = None,
) -> int:
    """A refund made at the provider without our asking (its dashboard): ``amount``, or what
    ``refunded_in_all`` (the provider's running total) says beyond the refunds the ledger
    knows, ours in flight included. Recorded once per ``key``, never past what was captured;
    answers the amount recorded."""
    booking_id = await session.scalar(select(Payment.booking_id).where(Payment.id == payment_id))
    if booking_id is None or await bookings.lock_booking(session, booking_id) is None:
        return 0
    payment = await payments.lock_payment(session, payment_id)
    if payment is None:
        return 0
    if refunded_in_all is not None:
        known = payment.refunded_minor + await payments.pending_refunds(session, payment)
        amount = refunded_in_all - known
    if amount is None or amount <= 0:
        return 0
    recorded = await payments.record_refund(
        session, payment, amount=amount, key=key, reference=reference, now=now
    )
    if recorded:
        log.warning("payment %s: %s refunded outside Roost, recorded", payment.id, recorded)
    return recorded


# (b) and (c).


async def apply(
    session: AsyncSession, *, operation_id: int, answer: payments.Answer, now: datetime
) -> Outcome:
    """(c) The one way a provider's answer lands: the ledger entry, the payment, and the change
    of the booking it completes. Applying an entry answered already does nothing, so two
    workers (or a worker and the request) may race to it."""
    found = (
        await session.execute(
            select(PaymentOperation.effect, Payment.id, Payment.booking_id, Booking.listing_id)
            .join(Payment, Payment.id == PaymentOperation.payment_id)
            .join(Booking, Booking.id == Payment.booking_id)
            .where(PaymentOperation.id == operation_id)
        )
    ).one()
    modifies = (found.effect or {}).get("do") == Effect.MODIFY
    if modifies:  # the calendar's lock first, as every writer of it takes them
        await bookings.lock_calendar(session, found.listing_id, bookable=False)
    locked = await bookings.lock_booking(session, found.booking_id)
    payment = await payments.lock_payment(session, found.id)
    operation = await payments.lock_operation(session, operation_id)
    if locked is None or payment is None or operation is None:
        raise AssertionError(f"payment operation {operation_id} lost its payment or booking")
    if operation.status != OperationStatus.REQUESTED:
        return Outcome()
    booking, listing = locked
    if answer.pending:  # taken, not finished: its webhook, or a worker asking later, ends it
        payments.wait(operation, reference=answer.reference, now=now)
        return Outcome()
    if not payments.complete(session, operation, payment, answer, now=now):
        if operation.kind in (OperationKind.CAPTURE, OperationKind.CHARGE):
            return Outcome(refusal=PaymentFailed(answer.declined))
        # Money owed back that the provider would not give: for people to look into.
        log.error("%s of payment %s declined: %s", operation.kind, payment.id, answer.declined)
        return Outcome()
    effect = operation.effect or {}
    if effect.get("do") == Effect.CONFIRM:
        bookings.confirm(session, booking, now)
    elif modifies:
        stay, price = _modification(effect)
        try:
            if booking.status not in ACTIVE_BOOKING:
                raise Conflict(f"A {booking.status.lower()} booking cannot be changed.")
            await bookings.refuse_taken(session, listing.id, stay, except_booking=booking.id)
        except Conflict as taken:  # meanwhile: what was charged goes back
            key = await payments.next_key(session, payment, "change")
            refund = await payments.request_refund(
                session, payment, amount=operation.amount_minor, key=key, now=now
            )
            return Outcome(follow_up=refund, refusal=taken)
        await bookings.change_stay(session, booking, listing, stay, price, now=now)
    return Outcome()


async def settle(
    transaction: Transaction,
    gateways: Gateways,
    call: ProviderCall | None,
    *,
    clock: Callable[[], datetime],
) -> None:
    """(b) Asks the provider, with no transaction open; (c) applies the answer in a unit of
    work of its own; and the same for any movement that answer calls for. Raises what the
    client should hear (a declined card, nights taken meanwhile) once all is recorded."""
    refusal: DomainError | None = None
    while call is not None:
        try:
            answer = await payments.ask(gateways.get(call.provider), call)
        except ProviderUnavailable:
            # The entry stays REQUESTED: the worker asks again under the same key.
            log.warning("payment operation %s: no answer", call.operation_id, exc_info=True)
            raise ServiceUnavailable(
                "The payment provider did not answer; Roost finishes this once it does."
            ) from None
        outcome = await transaction(
            partial(apply, operation_id=call.operation_id, answer=answer, now=clock())
        )
        call = outcome.follow_up
        refusal = refusal or outcome.refusal
    if refusal is not None:
        raise refusal


# Admins: a cancellation with a refund of their choosing, and refunds of a payment.

MAX_ADMIN_REASON = 500


def admin_reason(reason: str) -> str:
    """An admin's reason for moving money: required, plain text, kept in the audit log."""
    text = reason.strip()
    if not 1 <= len(text) <= MAX_ADMIN_REASON or has_control_characters(text):
        raise InvalidInput.field(
            "reason", f"must be 1 to {MAX_ADMIN_REASON} characters of plain text"
        )
    return text


def amount_of(amount: Decimal, currency: str, *, expected: str, field: str) -> int:
    """An amount an admin typed, in minor units of ``expected`` (the payment's currency)."""
    if currency.upper() != expected:
        raise InvalidInput.field(field, f"must be in {expected}, the payment's currency")
    try:
        minor = to_minor(amount, expected)
    except ValueError as problem:
        raise InvalidInput.field(field, str(problem)) from None
    if minor < 0:
        raise InvalidInput.field(field, "must not be negative")
    return minor


def _refund_bound(minor: int, balance: int, currency: str, field: str) -> None:
    if minor > balance:
        most = Money(balance, currency).formatted()
        raise InvalidInput.field(
            field, f"must be at most {most}: what was paid and not yet refunded"
        )


async def admin_cancel_booking(
    session: AsyncSession,
    *,
    admin: Actor,
    booking_id: int,
    refund: Decimal,
    currency: str,
    reason: str,
    gateways: Gateways,
    now: datetime,
) -> ProviderCall | None:
    """(a) An admin cancels anyone's booking, refunding ``refund`` (0 up to what the guest
    paid and has not had back), whatever the policy would give; both sides are told, the
    nights are freed, and the refund goes as any cancellation's (``payments.let_go``, under
    the payment's one cancel-refund key, so it is asked for once)."""
    if not is_admin(admin):
        raise Forbidden("Only admins cancel on anyone's behalf.")
    text = admin_reason(reason)
    found = await bookings.lock_booking(session, booking_id)
    if found is None:
        raise NotFound("No such booking.")
    booking, _ = found
    if booking.status not in ACTIVE_BOOKING:
        raise Conflict(f"A {booking.status.lower()} booking cannot be canceled.")
    await payments.refuse_in_flight(session, booking.id)
    payment = await payments.live_payment(session, booking.id, lock=True)
    minor = amount_of(refund, currency, expected=booking.currency, field="refund")
    balance = payments.captured_balance(payment)
    _refund_bound(minor, balance, booking.currency, "refund")
    if payment is not None and minor:
        minor = payments.refundable(
            minor, balance=balance, step=gateways.amount_step(payment.provider, payment.currency)
        )
    before = booking.status
    await bookings.cancel(session, booking, by=Party.ADMIN, reason=text, refund=minor, now=now)
    await audit.record(
        session,
        actor_id=admin.id,
        action="booking.admin_cancel",
        subject=("Booking", booking.id),
        before={"status": before},
        after={"status": booking.status, "refund_minor": minor, "currency": booking.currency},
        reason=text,
        now=now,
    )
    return await payments.let_go(session, payment, refund=minor, now=now)


async def refund_payment(
    session: AsyncSession,
    *,
    admin: Actor,
    payment_id: int,
    amount: Decimal,
    currency: str,
    reason: str,
    gateways: Gateways,
    now: datetime,
) -> ProviderCall | None:
    """(a) An admin refunds part or all of a captured payment, its booking left as it is:
    more than 0, at most what was paid and not yet refunded. Recorded REQUESTED under a key
    of its place in the ledger and settled like every refund; a second refund while one waits
    for its answer is refused (CONFLICT), so racing admins move the money once."""
    if not is_admin(admin):
        raise Forbidden("Only admins refund payments.")
    text = admin_reason(reason)
    booking_id = await session.scalar(select(Payment.booking_id).where(Payment.id == payment_id))
    found = await bookings.lock_booking(session, booking_id) if booking_id is not None else None
    payment = await payments.lock_payment(session, payment_id) if found else None
    if found is None or payment is None:
        raise NotFound("No such payment.")
    minor, call = await _refund(
        session, found[0], payment, amount=amount, currency=currency, gateways=gateways,
        purpose="admin-refund", now=now,
    )  # fmt: skip
    await audit.record(
        session,
        actor_id=admin.id,
        action="payment.refund",
        subject=("Payment", payment.id),
        before={"refunded_minor": payment.refunded_minor},
        after={"refund_minor": minor, "currency": payment.currency},
        reason=text,
        now=now,
    )
    return call


async def _refund(
    session: AsyncSession,
    booking: Booking,
    payment: Payment,
    *,
    amount: Decimal,
    currency: str,
    gateways: Gateways | None,
    purpose: str,
    now: datetime,
) -> tuple[int, ProviderCall | None]:
    """A refund an admin decided, of a captured payment, under the locks of its booking and
    payment: more than 0, at most what was paid and not yet refunded; CONFLICT while another
    movement of the booking's money waits for its answer. Keyed by its place in the ledger."""
    await payments.refuse_in_flight(session, booking.id)
    if payment.status not in CAPTURED_PAYMENT:
        raise Conflict(f"A {payment.status.lower()} payment has nothing to refund.")
    minor = amount_of(amount, currency, expected=payment.currency, field="amount")
    if minor == 0:
        raise InvalidInput.field("amount", "must be more than 0")
    balance = payments.captured_balance(payment)
    _refund_bound(minor, balance, payment.currency, "amount")
    step = gateways.amount_step(payment.provider, payment.currency) if gateways else 1
    minor = payments.refundable(minor, balance=balance, step=step)
    key = await payments.next_key(session, payment, purpose)
    return minor, await payments.request_refund(session, payment, amount=minor, key=key, now=now)


async def refund_booking(
    session: AsyncSession,
    *,
    booking_id: int,
    amount: Decimal,
    currency: str,
    gateways: Gateways | None,
    purpose: str,
    now: datetime,
) -> tuple[int, ProviderCall | None]:
    """(a) A refund of the booking's captured payment that an admin decided (a dispute's),
    the booking left as it is: the amount refunded, and the movement to ask for. The caller
    checked the admin."""
    found = await bookings.lock_booking(session, booking_id)
    if found is None:
        raise NotFound("No such booking.")
    payment = await payments.live_payment(session, booking_id, lock=True)
    if payment is None:
        raise Conflict("This booking has no payment to refund.")
    return await _refund(
        session, found[0], payment, amount=amount, currency=currency, gateways=gateways,
        purpose=purpose, now=now,
    )  # fmt: skip
