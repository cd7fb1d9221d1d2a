"""The REST sidecar: health checks now; uploads and webhooks join it later.

Every REST error answers ``{"error": {"code", "message"}}`` with the matching HTTP status.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from db.outages import note_if_unreachable
from services.errors import DomainError, Unauthenticated

log = logging.getLogger("roost.rest")

_CODES_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Whether this process can serve: its database answers, and its Redis when it has one."""
    state = request.app.state
    checks = [("database", state.database.ping)]
    if state.redis is not None:
        checks.append(("redis", state.redis.ping))
    for name, ping in checks:
        try:
            await ping()
        except Exception as error:
            if not note_if_unreachable(error):
                log.warning("readiness check failed", exc_info=True)
            return error_response(503, "SERVICE_UNAVAILABLE", f"The {name} is not reachable.")
    return JSONResponse({"status": "ready"})


async def oauth_authorization(request: Request) -> Response:
    """Where to send the user to sign in with a provider, with a fresh ``state`` and PKCE pair.

    The frontend keeps ``state`` and ``codeVerifier``, checks ``state`` when the provider
    redirects back, and hands the code and verifier to ``loginWithOAuth``."""
    settings = request.app.state.settings
    provider = request.app.state.services.oauth_providers.get(
        request.path_params["provider"].upper()
    )
    if provider is None:
        return error_response(404, "NOT_FOUND", "This sign-in provider is not enabled.")
    redirect_uri = request.query_params.get("redirect_uri", "")
    allowed = {settings.frontend_url.rstrip("/"), *(o.rstrip("/") for o in settings.cors_origins)}
    if not any(redirect_uri.startswith(origin + "/") for origin in allowed):
        return error_response(
            400, "BAD_USER_INPUT", "redirect_uri must be a page of the Roost frontend."
        )
    authorization = provider.authorization_request(redirect_uri)
    return JSONResponse(
        {
            "url": authorization.url,
            "state": authorization.state,
            "codeVerifier": authorization.code_verifier,
        },
        headers={"Cache-Control": "no-store"},
    )


async def on_http_exception(request: Request, exc: HTTPException) -> Response:
    code = _CODES_BY_STATUS.get(exc.status_code, "BAD_REQUEST")
    return error_response(exc.status_code, code, exc.detail, headers=exc.headers)


def unauthenticated_response(error: Unauthenticated) -> JSONResponse:
    """401 with the challenge RFC 6750 asks for; ``invalid_token`` and the ``reason`` when a
    token was sent and refused."""
    body = {"code": error.code, "message": error.message}
    challenge = 'Bearer realm="roost"'
    if error.reason is not None:
        body["reason"] = error.reason
        challenge += ', error="invalid_token"'
    return JSONResponse({"error": body}, status_code=401, headers={"WWW-Authenticate": challenge})


async def on_domain_error(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, Unauthenticated):
        return unauthenticated_response(exc)
    return error_response(exc.http_status, exc.code, exc.message)


class MediaFiles(StaticFiles):
    """Stored uploads. They are re-encoded images, and browsers are told not to guess otherwise."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "public, max-age=31536000, immutable")
        return response


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/oauth/{provider}/authorize", oauth_authorization, methods=["GET"]),
]

exception_handlers: dict[type[Exception], Callable[..., Awaitable[Response]]] = {
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
}
