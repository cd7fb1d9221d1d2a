"""Limits on attempts at sign-in, sign-up, password reset and OAuth, per client and per account."""

from dataclasses import dataclass

from gateways.ratelimit import RateLimiter
from services.errors import RateLimited

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class AttemptLimits:
    limiter: RateLimiter
    per_ip: int
    per_account: int

    async def count(self, action: str, *, ip: str | None, account: str | None = None) -> None:
        """Counts one attempt at ``action``; raises RateLimited once either side is over."""
        waits = []
        if ip is not None:
            waits.append(
                await self.limiter.hit(
                    f"{action}:ip:{ip}", limit=self.per_ip, window_seconds=WINDOW_SECONDS
                )
            )
        if account:
            waits.append(
                await self.limiter.hit(
                    f"{action}:account:{account.strip().lower()}",
                    limit=self.per_account,
                    window_seconds=WINDOW_SECONDS,
                )
            )
        if retry_after := max((wait for wait in waits if wait is not None), default=None):
            raise RateLimited(
                f"Too many attempts; try again in {retry_after} seconds.",
                retry_after_seconds=retry_after,
            )
