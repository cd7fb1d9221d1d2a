"""Payment providers behind one interface. Every call carries an idempotency key: a retried
call with the same key moves no more money than the first.

TEST is the built-in provider for development and tests: it keeps no state and never calls
out, answering references derived from the keys, so repeating a call answers the same.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

CaptureMethod = Literal["automatic", "manual"]
"""Taken as soon as the guest pays (instant book), or held until Roost captures it."""


class PaymentDeclined(Exception):
    """The provider refused: the card was declined, the refund was too large, ..."""


class PaymentPending(Exception):
    """The provider took the request but has not finished it (a refund Stripe answers
    ``pending``, PayPal ``PENDING``): nothing has moved yet. ``reference`` names the movement,
    to look it up later (``RefundLookup``); its webhook says how it ends."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"{reference} is pending at the provider")
        self.reference = reference


class ProviderUnavailable(Exception):
    """No answer came (a timeout, a server error): whether money moved is unknown until the
    provider is asked again under the same idempotency key."""


@dataclass(frozen=True)
class PaymentIntent:
    """A payment the guest still has to complete with the provider."""

    reference: str
    client_secret: str | None = None
    redirect_url: str | None = None


class Reported(StrEnum):
    """Where the provider says a payment is, in Roost's words."""

    WAITING = "WAITING"  # for the guest to pay
    AUTHORIZED = "AUTHORIZED"  # held on the card, to be captured
    CAPTURED = "CAPTURED"  # the money is taken
    FAILED = "FAILED"  # the guest's attempt was declined
    CANCELED = "CANCELED"  # the provider will take nothing more


@dataclass(frozen=True)
class ProviderReport:
    """What the provider says of a payment, amounts in Roost's minor units. ``amount_minor``
    is None when the provider's answer names no amount: M-Pesa's status query is about a
    request of ours, whose amount we set, and its failures carry none."""

    state: Reported
    amount_minor: int | None
    currency: str
    reference: str | None = None  # of the capture, when the money was taken
    reason: str | None = None  # why it failed


@runtime_checkable
class PaymentLookup(Protocol):
    """A provider that can be asked where a payment stands (for answers that never came)."""

    provider: str

    async def look_up(self, reference: str) -> ProviderReport: ...


@runtime_checkable
class RefundLookup(Protocol):
    """A provider whose refunds may finish later, asked where one stands by its id: answers
    the id once it succeeded, raises ``PaymentPending`` while it waits and ``PaymentDeclined``
    when it failed or was canceled."""

    provider: str

    async def look_up_refund(self, reference: str) -> str: ...


@runtime_checkable
class AmountSteps(Protocol):
    """A provider that moves some currencies only in steps of several of Roost's minor units
    (Stripe takes dinars in tens of fils, M-Pesa whole shillings); one that is not moves any
    whole minor unit."""

    provider: str

    def amount_step(self, currency: str) -> int: ...


@runtime_checkable
class CurrencyLimited(Protocol):
    """A provider that takes only some currencies; one that is not takes them all (what it
    cannot express exactly it refuses, amount by amount, as a decline)."""

    provider: str

    def supports(self, currency: str) -> bool: ...


@runtime_checkable
class PromptsThePayer(Protocol):
    """A provider whose ``create`` prompts the payer at once (M-Pesa's STK push: a PIN prompt
    on their phone). The money is taken as they approve, so nothing can be held for a request
    to book; and it keeps no idempotency key, so a payment it has a reference for is never
    created again (the payer would be prompted, and could pay, twice)."""

    provider: str
    prompts_the_payer: bool


@runtime_checkable
class RefundsToPayer(Protocol):
    """A provider that cannot give a payment back, only pay its payer anew (M-Pesa's B2C): its
    ``refund`` is told whom (``payer``, kept when the payment was made; None when it was not)."""

    provider: str
    refunds_to_payer: bool

    async def refund(
        self, reference: str, *, amount_minor: int, idempotency_key: str, payer: str | None
    ) -> str: ...


class PaymentGateway(Protocol):
    provider: str

    async def create(
        self,
        *,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
        capture: CaptureMethod,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        """A payment for the guest to complete; ``metadata`` names our booking and payment."""

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        """Takes an authorized amount. Answers the provider's id for the operation."""

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        """Cancels an authorization that was never captured."""

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        """Returns part or all of a captured amount. A refund the provider finishes later
        raises ``PaymentPending`` with its id."""

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        """Charges more to the payment method of ``reference`` (a longer stay, say)."""


class TestPaymentGateway:
    """Succeeds at everything, deterministically; development and tests only."""

    provider = "TEST"
    __test__ = False  # not a pytest test class, whatever its name says

    @staticmethod
    def _reference(prefix: str, idempotency_key: str) -> str:
        return f"{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"

    async def create(
        self,
        *,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
        capture: CaptureMethod,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        reference = self._reference("test_pi", idempotency_key)
        return PaymentIntent(reference=reference, client_secret=f"{reference}_secret")

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        return self._reference("test_ch", idempotency_key)

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        return self._reference("test_rl", idempotency_key)

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        if amount_minor <= 0:
            raise PaymentDeclined("a refund must be more than zero")
        return self._reference("test_re", idempotency_key)

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        return self._reference("test_ch", idempotency_key)
