"""Who is making a request, as their access token says."""

from dataclasses import dataclass, field
from enum import StrEnum

from auth.revocations import RevokedSessions
from auth.tokens import AccessClaims, AccessTokens, TokenRejected


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller, or nobody: ``user_id`` is None for an anonymous caller."""

    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Viewer()


class TokenProblem(StrEnum):
    """Why a token the client sent was refused (``extensions.reason`` of UNAUTHENTICATED)."""

    EXPIRED = "TOKEN_EXPIRED"
    """Ours and whole, but past its lifetime: refresh the session."""
    INVALID = "TOKEN_INVALID"
    """Anything else, a revoked session included: refresh once, else sign in again."""


@dataclass(frozen=True, slots=True)
class Authentication:
    viewer: Viewer = ANONYMOUS
    problem: TokenProblem | None = None
    claims: AccessClaims | None = None
    """The good token's claims: its session and expiry (a websocket outlives its token)."""


async def authenticate(
    header: str | None, access_tokens: AccessTokens, revoked: RevokedSessions
) -> Authentication:
    """The viewer an ``Authorization`` header names. No header is an anonymous caller; a header
    that is not a good ``Bearer`` access token of a live session is a problem, never anonymous:
    the client believes it sent a credential and must learn that it did not work."""
    if header is None:
        return Authentication()
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Authentication(problem=TokenProblem.INVALID)
    try:
        claims = access_tokens.decode(token)
    except TokenRejected as rejected:
        return Authentication(
            problem=TokenProblem.EXPIRED if rejected.expired else TokenProblem.INVALID
        )
    if await revoked.is_revoked(claims.session_id):
        return Authentication(problem=TokenProblem.INVALID)
    return Authentication(Viewer(user_id=claims.user_id, roles=claims.roles), claims=claims)
