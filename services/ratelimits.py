"""Limits on attempts at sign-in, sign-up, password reset, OAuth and the like, per client and per
account, in a moving window (a minute unless told otherwise).

Keys name what is limited, not how the client spelled it: an account is one budget whatever
the case, width or dots of its address, and a client is its address (or, for IPv6, its /64).
Keys are digests, so Redis holds no addresses.
"""

import hashlib
import ipaddress
import unicodedata
from dataclasses import dataclass

from gateways.ratelimit import RateLimiter
from services.errors import RateLimited
from services.validation import email_lookup_form, normalize_email

WINDOW_SECONDS = 60
IPV6_CLIENT_PREFIX = 64  # what one subscriber is handed; addresses inside it are free to them


def fold(text: str) -> str:
    """The compatibility caseless form (Unicode's D146, composed): ``Ｉ``, ``i`` and ``I`` meet."""
    folded = unicodedata.normalize("NFD", text).casefold()
    folded = unicodedata.normalize("NFKD", folded).casefold()
    return unicodedata.normalize("NFKC", folded)


def account_key(email: str) -> str:
    """One key for every spelling that signs in to the same account.

    It is a function of the form the account lookup compares (so two spellings that find one
    account always share it), folded further (fullwidth or other compatibility letters in the
    local part share it too: only more attempts share a budget). An address that does not
    parse finds no account and gets a key of its own folded form."""
    normalized = normalize_email(email)
    form = email_lookup_form(normalized) if normalized is not None else email.strip()
    return "email:" + _digest(fold(form))


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def client_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return "client:" + _digest(fold(ip))
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return f"ip:{network.network_address}/{IPV6_CLIENT_PREFIX}"
    return f"ip:{address}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class AttemptLimits:
    limiter: RateLimiter
    per_ip: int
    per_account: int
    window_seconds: int = WINDOW_SECONDS

    async def count(
        self,
        action: str,
        *,
        ip: str | None,
        email: str | None = None,
        user_id: int | None = None,
    ) -> None:
        """Counts one attempt at ``action`` by the client at ``ip``, on the account named by
        ``email`` (as typed) or ``user_id``; raises RateLimited once either side is over.

        A client already refused spends nothing of the account's budget."""
        if ip is not None:
            await self._hit(f"{action}:{client_key(ip)}", self.per_ip)
        if email is not None:
            await self._hit(f"{action}:{account_key(email)}", self.per_account)
        if user_id is not None:
            await self._hit(f"{action}:{user_key(user_id)}", self.per_account)

    async def _hit(self, key: str, limit: int) -> None:
        retry_after = await self.limiter.hit(key, limit=limit, window_seconds=self.window_seconds)
        if retry_after is not None:
            raise RateLimited(
                f"Too many attempts; try again in {retry_after} seconds.",
                retry_after_seconds=retry_after,
            )
