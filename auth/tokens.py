"""Access tokens (short JWTs) and the opaque secrets behind refresh and one-time tokens."""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "sid", "roles", "iat", "exp", "jti", "iss", "aud"]
_MAX_USER_ID = 2**63 - 1  # user ids are PostgreSQL bigints


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    roles: frozenset[str]
    session_id: uuid.UUID
    """The sign-in session (refresh-token family) the token was issued for."""
    expires_at: float
    """When the token stops being good, in seconds since the epoch."""


class TokenRejected(Exception):
    """An access token that does not verify. ``expired`` only when nothing else is wrong
    with it: it is ours, well formed and whole, and merely past its lifetime."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


class AccessTokens:
    def __init__(self, *, secret: str, issuer: str, audience: str, lifetime: timedelta) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.lifetime = lifetime

    def issue(
        self,
        user_id: int,
        roles: Sequence[str],
        *,
        session_id: uuid.UUID,
        now: datetime | None = None,
    ) -> str:
        issued_at = now or datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "roles": sorted(roles),
            "iat": issued_at,
            "exp": issued_at + self.lifetime,
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM, headers={"typ": "at+jwt"})

    def decode(self, token: str, *, now: datetime | None = None) -> AccessClaims:
        """The claims of a valid access token; raises ``TokenRejected`` for anything else."""
        try:
            if jwt.get_unverified_header(token).get("typ") != ACCESS_TOKEN_TYPE:
                raise TokenRejected()
            # Expiry is checked last, by hand, so that "expired" is only ever said of a token
            # that is otherwise good: a client told so may simply refresh.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False},
            )
            user_id, roles, session_id = claims["sub"], claims["roles"], claims["sid"]
            if not isinstance(user_id, str) or not user_id.isascii() or not user_id.isdigit():
                raise TokenRejected()
            if not 0 < int(user_id) <= _MAX_USER_ID:
                raise TokenRejected()
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise TokenRejected()
            if not isinstance(session_id, str):
                raise TokenRejected()
            expires_at = claims["exp"]
            if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
                raise TokenRejected()
            result = AccessClaims(
                user_id=int(user_id),
                roles=frozenset(roles),
                session_id=uuid.UUID(session_id),
                expires_at=float(expires_at),
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
            raise TokenRejected() from None
        if expires_at <= (now or datetime.now(UTC)).timestamp():
            raise TokenRejected(expired=True)
        return result


def new_secret_token() -> str:
    """An opaque token of 256 random bits, for refresh, reset and verification links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored of a secret token: its SHA-256, so a database leak reveals no token."""
    return hashlib.sha256(token.encode()).digest()
