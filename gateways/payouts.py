"""Paying hosts: an account at the provider for each host, and transfers to it. Every transfer
carries an idempotency key: asked again under the same key, the provider answers the same
transfer and moves no more money.

Errors are the payment seam's own: ``PaymentDeclined`` when the provider refused (no money
moved), ``ProviderUnavailable`` when no answer came (whether money moved is unknown until the
provider is asked again under the same key).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class OnboardingLink:
    """A single-use page at the provider where the host fills in their payout details."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class AccountState:
    """What the provider says of a host's account."""

    reference: str
    details_submitted: bool
    payouts_enabled: bool


@runtime_checkable
class PayoutGateway(Protocol):
    provider: str

    async def create_account(
        self,
        *,
        email: str,
        country: str | None,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> str:
        """An account for a host to be paid into; answers the provider's id for it."""

    async def onboarding_link(
        self, account: str, *, refresh_url: str, return_url: str
    ) -> OnboardingLink:
        """Where the host completes the account's details."""

    async def transfer(
        self,
        *,
        account: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        group: str,
        metadata: Mapping[str, str],
    ) -> str:
        """Sends ``amount_minor`` to ``account``; answers the provider's id for the transfer."""

    async def find_transfer(self, *, group: str, payout_id: str) -> str | None:
        """The transfer made for ``payout_id`` in ``group``, if any (for a key the provider
        may have forgotten)."""

    def amount_step(self, currency: str) -> int:
        """The smallest amount, in Roost's minor units, that transfers are multiples of."""
