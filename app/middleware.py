"""ASGI middleware: request ids with one access-log line each, request body limits, and
security headers."""

import base64
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Mapping
from functools import lru_cache

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics, route_label
from app.observability import request_id_var
from app.rest import error_response
from db.outages import note_if_unreachable
from services.errors import ServiceUnavailable

access_log = logging.getLogger("roost.access")

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Paths that carry a secret (M-Pesa's callback URL, calendar feeds), logged without it.
_SECRET_PATHS = ("/webhooks/mpesa/", "/calendar/")


def logged_path(path: str) -> str:
    for prefix in _SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "***"
    return path


class RequestContextMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` when sane), logs it once, and
    counts and times it in ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        status: int | None = None
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as error:
            outage = note_if_unreachable(error)
            if not outage:
                # A bug: the client learns nothing of it but the request id to quote.
                access_log.exception("unexpected error while serving a request")
            if status is not None or scope["type"] != "http":
                raise
            if outage:
                unavailable = ServiceUnavailable()
                response = error_response(
                    unavailable.http_status,
                    unavailable.code,
                    unavailable.message,
                    headers={"Retry-After": "5"},
                )
            else:
                response = error_response(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
            await response(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method", "WEBSOCKET"),
                    "client": (scope.get("client") or (None,))[0],
                    "path": logged_path(scope["path"]),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "operation": state.get("graphql_operation"),
                },
            )
            # A websocket's time is its connection's life, not a request's: not timed.
            if self.metrics is not None and scope["type"] == "http":
                self.metrics.observe_request(
                    route=route_label(scope.get("route")),
                    operation=state.get("graphql_operation"),
                    status=status,
                    error_code=state.get("graphql_error_code"),
                    seconds=seconds,
                )
            request_id_var.reset(token)


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answers 413 to a body over its path's limit, whether declared up front or streamed."""

    def __init__(
        self, app: ASGIApp, *, default_limit: int, limits_by_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits_by_path = dict(limits_by_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits_by_path.get(scope["path"], self.default_limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._too_large(scope, receive, send, limit)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes."
        )
        await response(scope, receive, send)


# Where the HTML pages Roost serves (GraphiQL, in development) load their scripts and styles.
HTML_ASSET_ORIGINS = ("https://unpkg.com",)
HSTS = "max-age=31536000"
# JSON, files and errors: nothing in them may load, run or be framed.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)


@lru_cache(maxsize=16)
def html_policy(body: bytes) -> str:
    """A Content-Security-Policy for one HTML page: scripts from the pinned origins and the
    page's own inline scripts, by hash (no 'unsafe-inline', no eval); fetches to Roost only."""
    hashes = [
        # Browsers hash the text after normalizing line breaks, as they parse it.
        "'sha256-{}'".format(
            base64.b64encode(
                hashlib.sha256(script.replace(b"\r\n", b"\n").replace(b"\r", b"\n")).digest()
            ).decode()
        )
        for script in _INLINE_SCRIPT.findall(body)
    ]
    origins = " ".join(HTML_ASSET_ORIGINS)
    return "; ".join(
        [
            "default-src 'none'",
            " ".join(["script-src 'self'", origins, *hashes]),
            # Styles cannot run code; the editor's widgets add <style> elements of their own.
            f"style-src 'self' {origins} 'unsafe-inline'",
            f"font-src 'self' {origins} data:",
            "img-src 'self' data:",
            "connect-src 'self'",  # the page's fetches and its websocket, to Roost only
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


class SecurityHeadersMiddleware:
    """The usual security headers on every HTTP response, unless a route set its own.

    HSTS only on requests that came over HTTPS (``scope["scheme"]``, which ProxyHeaders sets
    from a trusted proxy's ``X-Forwarded-Proto``): a browser ignores it over plain HTTP, and
    local development has none. An HTML page is held until its body is complete, to hash its
    inline scripts into its policy.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        held_start: Message | None = None
        held_body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal held_start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if "content-security-policy" in headers:
                    await send(message)
                elif headers.get("content-type", "").startswith("text/html"):
                    held_start = message
                else:
                    headers["Content-Security-Policy"] = API_POLICY
                    await send(message)
                return
            if held_start is None:
                await send(message)
                return
            if message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"".join(held_body)}
                body = message["body"]
            else:  # sent some other way (a file by path): none of its inline scripts may run
                body = b""
            start, held_start = held_start, None
            MutableHeaders(scope=start)["Content-Security-Policy"] = html_policy(body)
            await send(start)
            await send(message)

        await self.app(scope, receive, send_with_headers)
