"""Who is making a request, as their access token says."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller, or nobody: ``user_id`` is None for an anonymous caller."""

    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Viewer()
