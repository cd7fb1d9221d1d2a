"""Domain errors: what a service raises when a caller can act on the failure.

Each kind carries the stable code a client sees in ``extensions.code`` (GraphQL) or in
``{"error": {"code"}}`` (REST). Anything that is not a ``DomainError`` is a bug and is masked.
"""

from collections.abc import Mapping
from dataclasses import dataclass


class DomainError(Exception):
    code: str = "INTERNAL_SERVER_ERROR"
    http_status: int = 500
    default_message: str = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


@dataclass(frozen=True)
class Refusal:
    """A "no" whose changes must stand, such as the session a replayed refresh token ends.

    A raised error rolls its unit of work back, so a service returns this instead, its unit of
    work commits, and the caller raises ``error`` after the commit."""

    error: DomainError


class Unauthenticated(DomainError):
    """``reason`` says why a token the client sent was refused (TOKEN_EXPIRED, TOKEN_INVALID)."""

    code = "UNAUTHENTICATED"
    http_status = 401
    default_message = "You need to sign in."

    def __init__(self, message: str | None = None, *, reason: str | None = None):
        super().__init__(message)
        self.reason = reason

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        if self.reason is not None:
            extensions["reason"] = self.reason
        return extensions


class Forbidden(DomainError):
    code = "FORBIDDEN"
    http_status = 403
    default_message = "You are not allowed to do this."


class NotFound(DomainError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "Not found."


class InvalidInput(DomainError):
    """Bad input; ``fields`` maps each offending input field to what is wrong with it, and
    ``reason``, where a client must tell cases apart (a wrong code, an expired one), names the
    case in words that never change."""

    code = "BAD_USER_INPUT"
    http_status = 400
    default_message = "The input is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        reason: str | None = None,
    ):
        self.fields = dict(fields or {})
        self.reason = reason
        # Without a message of its own, the error says which fields are wrong and why.
        super().__init__(message or "; ".join(f"{k}: {v}" for k, v in self.fields.items()) or None)

    @classmethod
    def field(cls, name: str, problem: str, *, reason: str | None = None) -> "InvalidInput":
        return cls(f"{name}: {problem}", fields={name: problem}, reason=reason)

    def extensions(self) -> dict[str, object]:
        extensions: dict[str, object] = {"code": self.code, "fields": self.fields}
        if self.reason is not None:
            extensions["reason"] = self.reason
        return extensions


class Conflict(DomainError):
    code = "CONFLICT"
    http_status = 409
    default_message = "This conflicts with the current state."


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after_seconds: int | None = None):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def extensions(self) -> dict[str, object]:
        extensions = super().extensions()
        if self.retry_after_seconds is not None:
            extensions["retryAfter"] = self.retry_after_seconds
        return extensions


class PaymentFailed(DomainError):
    code = "PAYMENT_FAILED"
    http_status = 402
    default_message = "The payment did not go through."


class ServiceUnavailable(DomainError):
    """A service Roost depends on (the database, Redis) is out of reach: try again shortly."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503
    default_message = "Roost cannot reach a service it depends on right now; try again shortly."
