"""Access tokens (short JWTs) and the opaque secrets behind refresh and one-time tokens."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "roles", "iat", "exp", "jti", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    roles: frozenset[str]


class AccessTokens:
    def __init__(self, *, secret: str, issuer: str, audience: str, lifetime: timedelta) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.lifetime = lifetime

    def issue(self, user_id: int, roles: list[str], *, now: datetime | None = None) -> str:
        issued_at = now or datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "roles": sorted(roles),
            "iat": issued_at,
            "exp": issued_at + self.lifetime,
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM, headers={"typ": "at+jwt"})

    def decode(self, token: str) -> AccessClaims | None:
        """The claims of a valid access token; None for anything else (forged, expired, ...)."""
        try:
            if jwt.get_unverified_header(token).get("typ") != ACCESS_TOKEN_TYPE:
                return None
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
            roles = claims["roles"]
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                return None
            return AccessClaims(user_id=int(claims["sub"]), roles=frozenset(roles))
        except (jwt.PyJWTError, ValueError, TypeError):
            return None


def new_secret_token() -> str:
    """An opaque token of 256 random bits, for refresh, reset and verification links."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored of a secret token: its SHA-256, so a database leak reveals no token."""
    return hashlib.sha256(token.encode()).digest()
