"""OAuth2 client-credentials tokens, as PayPal and Daraja hand them out: asked for once, reused
until shortly before they expire, and asked for again when the provider refuses one."""

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from gateways.payments import ProviderUnavailable

# A cached token is renewed this long before the provider says it expires.
MARGIN_SECONDS = 60.0


class CachedToken:
    def __init__(
        self,
        request: Callable[[], Awaitable[httpx.Response]],
        *,
        provider: str,
        clock: Callable[[], float],
    ) -> None:
        """``request`` asks the provider for a token (``access_token``, ``expires_in``)."""
        self._request = request
        self._provider = provider
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, stale: str | None = None) -> str:
        """A cached token, or a new one when it is about to expire or was refused (``stale``).
        Refused credentials are ours to fix, not the guest's, and nothing was asked yet: every
        failure here is unavailability, safe to try again later."""
        async with self._lock:
            if self._token is not None and self._token != stale:
                if self._clock() < self._expires:
                    return self._token
            try:
                response = await self._request()
            except httpx.HTTPError as error:
                raise ProviderUnavailable(f"{self._provider} did not answer: {error!r}") from None
            status = response.status_code
            if status in (400, 401, 403):
                raise ProviderUnavailable(f"{self._provider} refused our credentials ({status})")
            try:
                if status != 200:
                    raise ValueError(status)
                body = response.json()
                token = str(body["access_token"])
                expires_in = float(body.get("expires_in", 0))  # Daraja's is a string: "3599"
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ProviderUnavailable(
                    f"{self._provider} answered {status} to the token request without a token"
                ) from None
            self._token = token
            self._expires = self._clock() + expires_in - min(MARGIN_SECONDS, expires_in / 2)
            return token
