"""Payment providers for the money tests.

``BlockingProvider`` answers as TEST does, but holds every call until the test lets it go.
``LedgerProvider`` keeps the provider's side in a table of the test database, so that every
process sees it: a call is recorded once per idempotency key and a repeat answers what the
first did, as Stripe does. It can kill its own process right after answering.
"""

import asyncio
import hashlib
import os
import signal
from collections.abc import Mapping

import asyncpg

from gateways.payments import (
    CaptureMethod,
    PaymentDeclined,
    PaymentIntent,
    ProviderUnavailable,
    TestPaymentGateway,
)

PROVIDER_TABLE = """
CREATE TABLE IF NOT EXISTS fake_provider_call (
  idempotency_key text PRIMARY KEY, kind text NOT NULL, amount_minor bigint NOT NULL,
  reference text NOT NULL
)
"""


class BlockingProvider(TestPaymentGateway):
    """``entered`` is set as a call arrives; the call answers once ``answer`` is set."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.answer = asyncio.Event()
        self.calls: list[str] = []

    async def _hold(self, name: str) -> None:
        self.calls.append(name)
        self.entered.set()
        await self.answer.wait()

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
        await self._hold("create")
        return await super().create(
            amount_minor=amount_minor,
            currency=currency,
            description=description,
            idempotency_key=idempotency_key,
            capture=capture,
            metadata=metadata,
        )

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        await self._hold("capture")
        return await super().capture(
            reference, amount_minor=amount_minor, idempotency_key=idempotency_key
        )

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        await self._hold("release")
        return await super().release(reference, idempotency_key=idempotency_key)

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        await self._hold("refund")
        return await super().refund(
            reference, amount_minor=amount_minor, idempotency_key=idempotency_key
        )

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        await self._hold("charge")
        return await super().charge(
            reference, amount_minor=amount_minor, currency=currency, idempotency_key=idempotency_key
        )


class FailingProvider(TestPaymentGateway):
    """Every movement of money is declined, or gets no answer at all."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.asked = 0

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        self.asked += 1
        raise self.error

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        self.asked += 1
        raise self.error


def declining() -> FailingProvider:
    return FailingProvider(PaymentDeclined("Your card has insufficient funds."))


def silent() -> FailingProvider:
    return FailingProvider(ProviderUnavailable("timed out"))


class LedgerProvider(TestPaymentGateway):
    """Records each movement in ``fake_provider_call`` (the test creates the table)."""

    def __init__(self, database_url: str, *, die_after_answer: bool = False) -> None:
        self.database_url = database_url
        self.die_after_answer = die_after_answer

    async def _move(self, kind: str, amount_minor: int, key: str) -> str:
        reference = f"fake_{kind}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        connection = await asyncpg.connect(self.database_url)
        try:
            await connection.execute(
                "INSERT INTO fake_provider_call VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                key,
                kind,
                amount_minor,
                reference,
            )
            answer = await connection.fetchval(
                "SELECT reference FROM fake_provider_call WHERE idempotency_key = $1", key
            )
        finally:
            await connection.close()
        if self.die_after_answer:  # the answer is in; our second transaction never runs
            os.kill(os.getpid(), signal.SIGKILL)
        return answer

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        return await self._move("capture", amount_minor, idempotency_key)

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        return await self._move("release", 0, idempotency_key)

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        return await self._move("refund", amount_minor, idempotency_key)

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        return await self._move("charge", amount_minor, idempotency_key)
