"""Payments: a payment's status, its ledger, and asking its provider.

Money moves in three steps, run by services/checkout.py. ``request`` writes the movement to the
ledger (``payment_operation``) as REQUESTED, under an idempotency key made from our own ids, in
the transaction that decided it. ``ask`` puts it to the provider under that key, outside any
transaction. ``complete`` records the answer in a second, short transaction. Asking again under
the same key moves no more money than the first time, so an answer a crash lost is found by
asking again (``claim_unanswered``).

A payment's status changes only through ``_move`` and its table, a ledger entry's through
``_finish``; anything else is a bug and raises.
"""

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking, Payment, PaymentOperation
from db.rows import PaymentRow
from db.states import (
    CAPTURED_PAYMENT,
    LIVE_PAYMENT,
    OperationKind,
    OperationStatus,
    PaymentProvider,
    PaymentStatus,
)
from gateways.payments import (
    AmountSteps,
    CaptureMethod,
    CurrencyLimited,
    PaymentDeclined,
    PaymentGateway,
    PaymentPending,
    PromptsThePayer,
    RefundLookup,
    RefundsToPayer,
)
from services import events
from services.errors import Conflict, InvalidInput

log = logging.getLogger("roost.payments")

CAPTURED = CAPTURED_PAYMENT
LIVE = LIVE_PAYMENT
# How long an answer may take before the worker asks the provider again; a provider that
# stays silent is asked again after as long as it has been silent, up to ``MAX_RETRY_AFTER``.
RETRY_AFTER = timedelta(minutes=1)
MAX_RETRY_AFTER = timedelta(hours=1)
# How long a guest may take to pay with the provider before a worker asks it how that went,
# and again at this interval while the payment waits.
CHECK_AFTER = timedelta(minutes=2)
# How long a push to the payer's phone is claimed by the request sending it: about as long as
# a prompt nobody answers stays on the phone.
PROMPT_CLAIM = timedelta(minutes=1)
# Providers with nothing to cancel for a payment never completed.
UNCLOSABLE = (PaymentProvider.TEST, PaymentProvider.MPESA)
# How often a worker asks about a refund the provider took but has not finished (its webhook
# usually says first): such refunds take hours or days.
PENDING_CHECK_AFTER = timedelta(minutes=10)
IN_FLIGHT = "A payment for this booking is being processed; try again in a moment."
# What the worker asks the provider about (``claim_waiting``): payments waiting for the guest
# or for a capture, and payments let go whose cancellation the provider refused.
WAITING = (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED)
LET_GO = (PaymentStatus.CANCELED, PaymentStatus.FAILED)

_NEXT: Mapping[str, frozenset[PaymentStatus]] = {
    # The guest completes it with the provider, the card is declined, or it is let go.
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.AUTHORIZED, PaymentStatus.FAILED, PaymentStatus.CANCELED}
    ),
    # Captured, the capture declined, or the hold on the card released.
    PaymentStatus.AUTHORIZED: frozenset(
        {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED}
    ),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.REFUNDED}),
    # Charged again (a longer stay) after everything went back.
    PaymentStatus.REFUNDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED}),
}
_OPERATION_NEXT: Mapping[str, frozenset[OperationStatus]] = {
    OperationStatus.REQUESTED: frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED}),
}


class IllegalTransition(Exception):
    """A status change no table allows: a bug, never something the client did."""


@dataclass(frozen=True)
class Gateways:
    """The payment providers this deployment can use, by API name."""

    by_provider: dict[str, PaymentGateway]

    def get(self, provider: str) -> PaymentGateway:
        gateway = self.by_provider.get(provider)
        if gateway is None:
            raise InvalidInput.field("provider", f"{provider} payments are not available")
        return gateway

    def offered(self, currency: str, *, capture: CaptureMethod = "automatic") -> list[str]:
        """The providers that take ``currency`` (and can hold the money, for a ``manual``
        capture), in the order they are configured."""
        return [
            name
            for name, gateway in self.by_provider.items()
            if _takes(gateway, currency) and _can(gateway, capture)
        ]

    def amount_step(self, provider: str, currency: str) -> int:
        """The smallest amount, in minor units, ``provider`` moves in ``currency``."""
        gateway = self.by_provider.get(provider)
        return gateway.amount_step(currency) if isinstance(gateway, AmountSteps) else 1

    def taking(
        self, provider: str, currency: str, *, capture: CaptureMethod = "automatic"
    ) -> PaymentGateway:
        """The gateway of ``provider``, refused unless it takes ``currency`` (and can hold the
        money until the host answers, for a ``manual`` capture)."""
        gateway = self.get(provider)
        if not _takes(gateway, currency):
            raise InvalidInput.field(
                "provider",
                f"{provider} does not take payments in {currency}; "
                "the booking's paymentProviders do",
            )
        if not _can(gateway, capture):
            raise InvalidInput.field(
                "provider",
                f"{provider} takes the money at once and cannot hold it until the host "
                "answers a request to book; the booking's paymentProviders can",
            )
        return gateway


def _takes(gateway: PaymentGateway, currency: str) -> bool:
    return not isinstance(gateway, CurrencyLimited) or gateway.supports(currency)


def _can(gateway: PaymentGateway, capture: CaptureMethod) -> bool:
    """A provider that prompts the payer takes the money as they approve: it cannot hold it."""
    return capture == "automatic" or not prompts_the_payer(gateway)


def prompts_the_payer(gateway: PaymentGateway) -> bool:
    return isinstance(gateway, PromptsThePayer) and gateway.prompts_the_payer


@dataclass(frozen=True)
class ProviderCall:
    """A movement recorded REQUESTED: what to ask the provider, under which key."""

    operation_id: int
    payment_id: int
    provider: str
    kind: OperationKind
    reference: str
    amount_minor: int
    currency: str
    key: str
    # The provider's id for a movement it took and has not finished: asked about by that id.
    pending_reference: str | None = None
    # Whom a provider that refunds by paying anew pays (``Payment.payer``).
    payer: str | None = None


@dataclass(frozen=True)
class Answer:
    """The provider's answer: the reference of the movement, or why it was refused; or that
    it took the request and has not finished it (``pending``: nothing moved yet)."""

    reference: str | None = None
    declined: str | None = None
    pending: bool = False


def _move(payment: Payment, status: PaymentStatus) -> None:
    """The only place a payment changes status."""
    if status not in _NEXT.get(payment.status, ()):
        raise IllegalTransition(f"payment {payment.id}: {payment.status} cannot become {status}")
    payment.status = status
    if status not in WAITING:
        payment.check_at = None  # the provider's word is in: nothing to ask it


def _finish(operation: PaymentOperation, status: OperationStatus, *, now: datetime) -> None:
    if status not in _OPERATION_NEXT.get(operation.status, ()):
        raise IllegalTransition(
            f"payment operation {operation.id}: {operation.status} cannot become {status}"
        )
    operation.status = status
    operation.completed_at = now
    operation.retry_at = None


def _rebalance(payment: Payment) -> None:
    """The status the amounts now tell, after a refund or a further charge. A payment let go
    keeps its status: money taken for it anyway came back (``refund_stray``)."""
    if payment.status not in CAPTURED:
        return
    refunded = payment.refunded_minor
    if refunded == 0:
        status = PaymentStatus.SUCCEEDED
    elif refunded == payment.amount_minor:
        status = PaymentStatus.REFUNDED
    else:
        status = PaymentStatus.PARTIALLY_REFUNDED
    if status != payment.status:
        _move(payment, status)


def refundable(amount: int, *, balance: int, step: int) -> int:
    """A refund of ``amount`` as the provider can make it: rounded up to its ``step`` (a
    fraction of a step goes to the guest), never more than the ``balance`` still captured.
    The balance is a whole number of steps: it was charged, and refunded, in them."""
    if amount <= 0:
        return 0
    return min(-(-amount // step) * step, balance)


def captured_balance(payment: Payment | PaymentRow | None) -> int:
    """What the guest has paid and not had back."""
    if payment is None or payment.status not in CAPTURED:
        return 0
    return payment.amount_minor - payment.refunded_minor


async def live_payment(session: AsyncSession, booking_id: int, *, lock: bool) -> Payment | None:
    query = select(Payment).where(Payment.booking_id == booking_id, Payment.status.in_(LIVE))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def lock_payment(session: AsyncSession, payment_id: int) -> Payment | None:
    return await session.scalar(
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def in_flight(booking_id: Any) -> Any:
    """The SQL condition: a movement of this booking's money waits for its answer
    (``booking_id`` a number or a column)."""
    return exists().where(
        PaymentOperation.status == OperationStatus.REQUESTED,
        PaymentOperation.payment_id == Payment.id,
        Payment.booking_id == booking_id,
    )


async def refuse_in_flight(session: AsyncSession, booking_id: int) -> None:
    """CONFLICT while a movement of the booking's money waits for its answer: a change decided
    now could not know what that answer will leave (a second charge, a refund of money not yet
    taken). Callers hold the booking's lock, under which every answer is applied."""
    if await session.scalar(select(in_flight(booking_id))):
        raise Conflict(IN_FLIGHT)


# Starting and completing a payment with the guest.


async def open_payment(
    session: AsyncSession, *, booking_id: int, provider: str, currency: str, amount: int
) -> Payment:
    payment = Payment(
        booking_id=booking_id,
        provider=provider,
        status=PaymentStatus.PENDING,
        currency=currency,
        amount_minor=amount,
        refunded_minor=0,
    )
    session.add(payment)
    await session.flush()
    return payment


def creation_key(payment_id: int) -> str:
    return f"payment-{payment_id}-create"


async def store_reference(
    session: AsyncSession,
    *,
    payment_id: int,
    reference: str,
    now: datetime,
    payer: str | None = None,
) -> None:
    """The provider's id for a payment, once its ``create`` answered, and the account it asked
    to pay (``payer``: the number M-Pesa prompted, which a refund is paid back to)."""
    payment = await lock_payment(session, payment_id)
    if payment is not None and payment.provider_reference is None:
        payment.provider_reference = reference
        payment.payer = payer
        payment.check_at = now + CHECK_AFTER


def claim_prompt(payment: Payment, *, now: datetime) -> None:
    """The payment's push to the payer's phone is about to be sent, by this request alone: a
    second start meanwhile would prompt (and could be paid) twice. The claim lasts as long as
    an unanswered prompt stays on the phone; ``store_reference`` ends it, a refusal drops it."""
    if payment.check_at is not None and payment.check_at > now:
        raise Conflict("The payment prompt is on its way to the phone; try again in a minute.")
    payment.check_at = now + PROMPT_CLAIM


async def drop_prompt_claim(session: AsyncSession, *, payment_id: int) -> None:
    """The provider refused the push: nothing reached the phone, the guest may try again."""
    payment = await lock_payment(session, payment_id)
    if payment is not None and payment.provider_reference is None:
        payment.check_at = None


@dataclass(frozen=True)
class Waiting:
    """A payment to ask its provider about."""

    payment_id: int
    provider: str
    reference: str


async def claim_waiting(
    session: AsyncSession, *, providers: Collection[str], now: datetime, limit: int = 20
) -> list[Waiting]:
    """Payments of ``providers`` still waiting for the guest (PENDING) or for a capture
    (AUTHORIZED) at their ``check_at``, or PENDING with their booking's hold run out (the
    guest may have paid in its last minutes: asked before the hold is let go), or let go but
    not closed at the provider (it may have been paid as it was let go), each claimed until
    ``CHECK_AFTER`` from now, so workers running at once ask about different ones."""
    lapsed = (Payment.status == PaymentStatus.PENDING) & exists().where(
        Booking.id == Payment.booking_id, Booking.expires_at <= now
    )
    found = (
        await session.scalars(
            select(Payment)
            .where(
                Payment.status.in_((*WAITING, *LET_GO)),
                (Payment.check_at <= now) | lapsed,
                Payment.provider.in_(providers),
                Payment.provider_reference.is_not(None),
            )
            .order_by(Payment.check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for payment in found:
        payment.check_at = now + CHECK_AFTER
    return [Waiting(p.id, p.provider, p.provider_reference or "") for p in found]


def _answered(
    session: AsyncSession,
    payment: Payment,
    kind: OperationKind,
    *,
    reference: str,
    now: datetime,
    amount: int | None = None,
    key: str | None = None,
) -> None:
    """A ledger entry for a movement the provider made without our asking: written answered."""
    session.add(
        PaymentOperation(
            payment_id=payment.id,
            kind=kind,
            amount_minor=payment.amount_minor if amount is None else amount,
            idempotency_key=key or f"payment-{payment.id}-{kind.lower()}",
            status=OperationStatus.SUCCEEDED,
            requested_at=now,
            completed_at=now,
            provider_reference=reference,
        )
    )


def record_capture(
    session: AsyncSession, payment: Payment, *, reference: str, now: datetime
) -> None:
    """The provider took the money on its own (a payment captured as the guest paid)."""
    _move(payment, PaymentStatus.SUCCEEDED)
    _answered(session, payment, OperationKind.CAPTURE, reference=reference, now=now)
    succeeded = events.PaymentSucceeded(payment.id, payment.booking_id, payment.amount_minor)
    events.emit(session, succeeded, now=now)


async def refund_stray(
    session: AsyncSession, payment: Payment, *, reference: str, now: datetime
) -> ProviderCall | None:
    """Money the provider took for a payment Roost had let go (the guest paid as its booking
    lapsed or was cancelled): recorded as taken, and all of it asked back. Once only."""
    key = f"payment-{payment.id}-stray-refund"
    if await session.scalar(select(exists().where(PaymentOperation.idempotency_key == key))):
        return None
    _answered(
        session, payment, OperationKind.CAPTURE, reference=reference, now=now,
        key=f"payment-{payment.id}-stray-capture",
    )  # fmt: skip
    log.warning("payment %s: paid after it was %s; refunding it", payment.id, payment.status)
    amount = payment.amount_minor - payment.refunded_minor
    return await request(session, payment, OperationKind.REFUND, amount=amount, key=key, now=now)


async def pending_refunds(session: AsyncSession, payment: Payment) -> int:
    """What refunds asked of the provider and not yet answered come to: money the provider
    may be returning already, so no other refund may count on it."""
    pending = await session.scalar(
        select(func.coalesce(func.sum(PaymentOperation.amount_minor), 0)).where(
            PaymentOperation.payment_id == payment.id,
            PaymentOperation.kind == OperationKind.REFUND,
            PaymentOperation.status == OperationStatus.REQUESTED,
        )
    )
    return int(pending or 0)


async def record_refund(
    session: AsyncSession,
    payment: Payment,
    *,
    amount: int,
    key: str,
    reference: str,
    now: datetime,
) -> int:
    """A refund made at the provider without our asking (in its dashboard, say), once per
    ``key``: it goes in the ledger answered and moves the payment, never past what was
    captured less what our own refunds in flight may still return. Answers the amount."""
    if payment.status not in CAPTURED:
        return 0
    if await session.scalar(select(exists().where(PaymentOperation.idempotency_key == key))):
        return 0
    amount = min(amount, captured_balance(payment) - await pending_refunds(session, payment))
    if amount <= 0:
        return 0
    _answered(session, payment, OperationKind.REFUND, reference=reference, now=now,
              amount=amount, key=key)  # fmt: skip
    payment.refunded_minor += amount
    _rebalance(payment)
    events.emit(session, events.PaymentRefunded(payment.id, payment.booking_id, amount), now=now)
    return amount


def authorize(session: AsyncSession, payment: Payment, *, now: datetime) -> None:
    """The guest completed the payment with the provider: the amount is held for us."""
    _move(payment, PaymentStatus.AUTHORIZED)
    reference = payment.provider_reference or ""
    _answered(session, payment, OperationKind.AUTHORIZE, reference=reference, now=now)
    events.emit(session, events.PaymentAuthorized(payment.id, payment.booking_id), now=now)


MAX_FAILURE_REASON = 500


def fail(session: AsyncSession, payment: Payment, *, reason: str, now: datetime) -> None:
    """The payment failed, for ``reason`` (the provider's words, shown to the guest)."""
    _move(payment, PaymentStatus.FAILED)
    payment.failure_reason = reason[:MAX_FAILURE_REASON]
    failed = events.PaymentFailed(payment.id, payment.booking_id, payment.failure_reason)
    events.emit(session, failed, now=now)


# Intents: movements recorded before the provider is asked.


def _call(operation: PaymentOperation, payment: Payment) -> ProviderCall:
    return ProviderCall(
        operation_id=operation.id,
        payment_id=payment.id,
        provider=payment.provider,
        kind=OperationKind(operation.kind),
        reference=payment.provider_reference or "",
        amount_minor=operation.amount_minor,
        currency=payment.currency,
        key=operation.idempotency_key,
        pending_reference=operation.provider_reference,
        payer=payment.payer,
    )


async def next_key(session: AsyncSession, payment: Payment, purpose: str) -> str:
    """An idempotency key for the payment's next movement: its place in the ledger. A rerun
    of the transaction repeats it; a later movement, even of the same amount, gets its own."""
    recorded = await session.scalar(
        select(func.count()).where(PaymentOperation.payment_id == payment.id)
    )
    return f"payment-{payment.id}-{purpose}-{recorded}"


async def request(
    session: AsyncSession,
    payment: Payment,
    kind: OperationKind,
    *,
    amount: int,
    key: str,
    effect: dict[str, Any] | None = None,
    now: datetime,
) -> ProviderCall | None:
    """Records a movement as REQUESTED, to be asked of the provider once this commits. None
    when ``key`` is in the ledger already: asked for before, nothing more to ask."""
    if await session.scalar(select(exists().where(PaymentOperation.idempotency_key == key))):
        return None
    operation = PaymentOperation(
        payment_id=payment.id,
        kind=kind,
        amount_minor=amount,
        idempotency_key=key,
        status=OperationStatus.REQUESTED,
        effect=effect,
        requested_at=now,
        retry_at=now + RETRY_AFTER,
    )
    session.add(operation)
    await session.flush()
    return _call(operation, payment)


async def request_capture(
    session: AsyncSession, payment: Payment, *, effect: dict[str, Any], now: datetime
) -> ProviderCall | None:
    if payment.status != PaymentStatus.AUTHORIZED:
        raise IllegalTransition(f"payment {payment.id} is {payment.status}: nothing to capture")
    key = f"payment-{payment.id}-capture"
    return await request(
        session, payment, OperationKind.CAPTURE, amount=payment.amount_minor, key=key,
        effect=effect, now=now,
    )  # fmt: skip


async def request_refund(
    session: AsyncSession, payment: Payment, *, amount: int, key: str, now: datetime
) -> ProviderCall | None:
    """A refund of ``amount``, at most what is left of the payment once the refunds still
    waiting for their answer are counted; None when that is nothing."""
    amount = min(amount, captured_balance(payment) - await pending_refunds(session, payment))
    if amount <= 0:
        return None
    return await request(session, payment, OperationKind.REFUND, amount=amount, key=key, now=now)


async def request_charge(
    session: AsyncSession,
    payment: Payment,
    *,
    amount: int,
    key: str,
    effect: dict[str, Any],
    now: datetime,
) -> ProviderCall | None:
    return await request(
        session, payment, OperationKind.CHARGE, amount=amount, key=key, effect=effect, now=now
    )


async def request_close(
    session: AsyncSession, payment: Payment, *, now: datetime
) -> ProviderCall | None:
    """A payment that will never be paid is canceled at its provider too, so the guest's
    page cannot complete it afterwards (TEST keeps nothing open; an M-Pesa prompt cannot be
    withdrawn, and one left unanswered lapses on the phone without taking anything)."""
    if payment.provider_reference is None or payment.provider in UNCLOSABLE:
        return None
    key = f"payment-{payment.id}-release"
    return await request(
        session, payment, OperationKind.RELEASE, amount=payment.amount_minor, key=key, now=now
    )


async def let_go(
    session: AsyncSession, payment: Payment | None, *, refund: int, now: datetime
) -> ProviderCall | None:
    """The booking no longer needs the payment: one never completed is canceled, a hold on the
    card is released, and of money taken, ``refund`` goes back."""
    if payment is None:
        return None
    if payment.status == PaymentStatus.PENDING:
        _move(payment, PaymentStatus.CANCELED)
        await session.flush()  # at once: only one payment of a booking may be live
        return await request_close(session, payment, now=now)
    if payment.status == PaymentStatus.AUTHORIZED:
        key = f"payment-{payment.id}-release"
        return await request(
            session, payment, OperationKind.RELEASE, amount=payment.amount_minor, key=key, now=now
        )
    key = f"payment-{payment.id}-cancel-refund"
    return await request_refund(session, payment, amount=refund, key=key, now=now)


# Asking the provider, and recording its answer.


async def ask(gateway: PaymentGateway, call: ProviderCall) -> Answer:
    """Puts ``call`` to the provider. No transaction of ours may be open around this.
    ``ProviderUnavailable`` and other failures to get an answer propagate."""
    key = call.key
    try:
        if (
            call.kind == OperationKind.REFUND
            and call.pending_reference is not None
            and isinstance(gateway, RefundLookup)
        ):
            # Taken and not finished when last asked: asked again under the key, the provider
            # would only repeat that first answer.
            return Answer(reference=await gateway.look_up_refund(call.pending_reference))
        match call.kind:
            case OperationKind.CAPTURE:
                reference = await gateway.capture(
                    call.reference, amount_minor=call.amount_minor, idempotency_key=key
                )
            case OperationKind.RELEASE:
                reference = await gateway.release(call.reference, idempotency_key=key)
            case OperationKind.REFUND if isinstance(gateway, RefundsToPayer):
                reference = await gateway.refund(
                    call.reference, amount_minor=call.amount_minor, idempotency_key=key,
                    payer=call.payer,
                )  # fmt: skip
            case OperationKind.REFUND:
                reference = await gateway.refund(
                    call.reference, amount_minor=call.amount_minor, idempotency_key=key
                )
            case OperationKind.CHARGE:
                reference = await gateway.charge(
                    call.reference,
                    amount_minor=call.amount_minor,
                    currency=call.currency,
                    idempotency_key=key,
                )
            case _:
                raise IllegalTransition(f"{call.kind} is never asked of a provider")
    except PaymentDeclined as declined:
        return Answer(declined=str(declined) or "The provider declined.")
    except PaymentPending as pending:
        return Answer(reference=pending.reference, pending=True)
    return Answer(reference=reference)


async def lock_operation(session: AsyncSession, operation_id: int) -> PaymentOperation | None:
    return await session.scalar(
        select(PaymentOperation)
        .where(PaymentOperation.id == operation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def wait(operation: PaymentOperation, *, reference: str | None, now: datetime) -> None:
    """The provider took a movement and has not finished it: the entry stays REQUESTED (the
    payment does not move) with the provider's id for it, until its webhook or a worker asking
    by that id tells how it ended."""
    if operation.status != OperationStatus.REQUESTED:
        raise IllegalTransition(f"payment operation {operation.id} is {operation.status}")
    operation.provider_reference = reference or operation.provider_reference
    operation.retry_at = now + PENDING_CHECK_AFTER


def complete(
    session: AsyncSession,
    operation: PaymentOperation,
    payment: Payment,
    answer: Answer,
    *,
    now: datetime,
) -> bool:
    """Records the provider's answer to a REQUESTED ``operation`` and what it did to the
    payment; answers whether the money moved."""
    if answer.declined is not None:
        _finish(operation, OperationStatus.FAILED, now=now)
        operation.error = answer.declined[:2_000]
        if operation.kind == OperationKind.CAPTURE:
            # The hold on the card is worth nothing now: the guest pays again.
            fail(session, payment, reason=answer.declined, now=now)
        elif operation.kind == OperationKind.RELEASE and payment.status in LET_GO:
            # Refused, most likely because the guest paid as Roost let the payment go: the
            # worker asks the provider where it stands, and gives back what was taken.
            payment.check_at = now
        return False
    _finish(operation, OperationStatus.SUCCEEDED, now=now)
    operation.provider_reference = answer.reference
    amount = operation.amount_minor
    match operation.kind:
        case OperationKind.CAPTURE:
            _move(payment, PaymentStatus.SUCCEEDED)
            succeeded = events.PaymentSucceeded(payment.id, payment.booking_id, amount)
            events.emit(session, succeeded, now=now)
        case OperationKind.RELEASE:
            # A hold released cancels the payment; a payment never paid (let go, or failed)
            # keeps its status.
            if payment.status == PaymentStatus.AUTHORIZED:
                _move(payment, PaymentStatus.CANCELED)
        case OperationKind.REFUND:
            payment.refunded_minor += amount
            _rebalance(payment)
            refunded = events.PaymentRefunded(payment.id, payment.booking_id, amount)
            events.emit(session, refunded, now=now)
        case OperationKind.CHARGE:
            payment.amount_minor += amount
            _rebalance(payment)
            charged = events.PaymentSucceeded(payment.id, payment.booking_id, amount)
            events.emit(session, charged, now=now)
    return True


@dataclass(frozen=True)
class RefundEntry:
    operation_id: int
    payment_id: int
    amount_minor: int
    currency: str


async def find_refund(
    session: AsyncSession, *, provider: str, reference: str | None, key: str | None
) -> RefundEntry | None:
    """Our refund the provider names: by its id for it, or by the idempotency key we gave it
    (its answer, with the id, may not have landed yet)."""
    names = []
    if reference:
        names.append(PaymentOperation.provider_reference == reference)
    if key:
        names.append(PaymentOperation.idempotency_key == key)
    if not names:
        return None
    found = (
        await session.execute(
            select(PaymentOperation.id, Payment.id, PaymentOperation.amount_minor, Payment.currency)
            .join(Payment, Payment.id == PaymentOperation.payment_id)
            .where(
                Payment.provider == provider,
                PaymentOperation.kind == OperationKind.REFUND,
                or_(*names),
            )
            .order_by(PaymentOperation.id)
            .limit(1)
        )
    ).first()
    return RefundEntry(*found) if found is not None else None


async def claim_unanswered(
    session: AsyncSession, *, now: datetime, limit: int = 20
) -> list[ProviderCall]:
    """REQUESTED movements whose answer is overdue (a crash lost it, or the provider gave
    none), each claimed until its next retry: workers running at once ask about different
    ones, and a provider that stays down is asked with backoff (``retry_delay``)."""
    rows = (
        await session.execute(
            select(PaymentOperation, Payment)
            .join(Payment, Payment.id == PaymentOperation.payment_id)
            .where(
                PaymentOperation.status == OperationStatus.REQUESTED,
                PaymentOperation.retry_at <= now,
            )
            .order_by(PaymentOperation.retry_at)
            .limit(limit)
            .with_for_update(of=PaymentOperation, skip_locked=True)
        )
    ).all()
    for operation, _ in rows:
        operation.retry_at = now + retry_delay(now - operation.requested_at)
    return [_call(operation, payment) for operation, payment in rows]


def retry_delay(unanswered_for: timedelta) -> timedelta:
    """Waits as long again as the movement has waited: asked after 1, 2, 4, 8 ... minutes, so
    a provider that is down for hours is asked a few times an hour, not sixty."""
    return min(max(unanswered_for, RETRY_AFTER), MAX_RETRY_AFTER)
