"""ASGI middleware: request ids with one access-log line each, and request body limits."""

import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import request_id_var
from app.rest import error_response

access_log = logging.getLogger("roost.access")

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` when sane) and logs it once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
        except Exception:
            # A bug: the client learns nothing of it but the request id to quote.
            access_log.exception("unexpected error while serving a request")
            if status is not None or scope["type"] != "http":
                raise
            response = error_response(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
            await response(scope, receive, send_with_request_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method", "WEBSOCKET"),
                    "client": (scope.get("client") or (None,))[0],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "operation": state.get("graphql_operation"),
                },
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
