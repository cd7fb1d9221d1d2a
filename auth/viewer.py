"""Who is making a request, as their access token says."""

from dataclasses import dataclass, field

from auth.tokens import AccessTokens


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller, or nobody: ``user_id`` is None for an anonymous caller."""

    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Viewer()


def viewer_from_authorization(header: str | None, access_tokens: AccessTokens) -> Viewer:
    """The viewer a ``Bearer`` access token names; anonymous for a missing or bad one."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ANONYMOUS
    claims = access_tokens.decode(token.strip())
    return Viewer(user_id=claims.user_id, roles=claims.roles) if claims else ANONYMOUS
