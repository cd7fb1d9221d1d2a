"""The REST sidecar: health checks, OAuth sign-in links, and providers' webhooks.

Every REST error answers ``{"error": {"code", "message"}}`` with the matching HTTP status.
"""

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from db.outages import note_if_unreachable
from gateways.cache import Cache
from gateways.mpesa import B2cResult, b2c_result, b2c_timeout, status_result, stk_callback
from gateways.payments import ProviderUnavailable
from gateways.paypal import PayPalGateway
from gateways.stripe import BadSignature, verify_signature
from services import calendar_sync, mpesa_callbacks, paypal_webhooks, stripe_webhooks
from services.errors import DomainError, Unauthenticated
from services.provider_events import Outcome

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


async def stripe_webhook(request: Request) -> Response:
    """Stripe's events (https://docs.stripe.com/webhooks): the signature checked on the raw body,
    then the event recorded and applied in one transaction, once however often it is sent.
    Only the database is touched, so Stripe gets its answer fast; a database out of reach is
    a 503 (the middleware's), which Stripe retries."""
    state = request.app.state
    secrets = [secret.get_secret_value() for secret in state.settings.stripe_webhook_secret]
    if not secrets:
        return error_response(404, "NOT_FOUND", "Stripe webhooks are not enabled here.")
    payload = await request.body()  # bounded by the app's body size limit
    clock = state.services.clock
    try:
        verify_signature(
            payload,
            request.headers.get("stripe-signature", ""),
            secrets,
            now=clock().timestamp(),
        )
    except BadSignature as refused:
        return error_response(400, "BAD_SIGNATURE", str(refused))
    event = _stripe_event(payload)
    if event is None:
        return error_response(400, "BAD_REQUEST", "The body is not a Stripe event.")
    outcome = await state.database.transaction(
        partial(
            stripe_webhooks.apply_event,
            event=event,
            now=clock(),
            rules=await state.services.current_booking_rules(),
        )
    )
    return JSONResponse({"received": True, "outcome": outcome})


def _stripe_event(payload: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    if (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        return event
    return None


async def mpesa_callback(request: Request) -> Response:
    """M-Pesa's STK callbacks. They are not signed: the URL carries MPESA_CALLBACK_SECRET,
    compared in constant time; a wrong one is a 404 and nothing is stored. The result is
    recorded and applied in one transaction, once however often it is sent, and Daraja gets
    the acknowledgement it expects; a database out of reach is a 503 (the middleware's)."""
    state = request.app.state
    if not _mpesa_secret_matches(request):
        return error_response(404, "NOT_FOUND", "Not found.")
    body = await _json_body(request)
    result = stk_callback(body)
    if result is None or not isinstance(body, dict):
        return error_response(400, "BAD_REQUEST", "The body is not an M-Pesa STK callback.")
    clock = state.services.clock
    await state.database.transaction(
        partial(
            mpesa_callbacks.apply_callback,
            result=result,
            payload=body,
            now=clock(),
            rules=await state.services.current_booking_rules(),
        )
    )
    return JSONResponse({"ResultCode": 0, "ResultDesc": "Accepted"})


def _mpesa_secret_matches(request: Request) -> bool:
    """Daraja's posts are not signed: the URL carries MPESA_CALLBACK_SECRET, compared in
    constant time."""
    secret = request.app.state.settings.mpesa_callback_secret
    given = request.path_params["secret"].encode()
    return secret is not None and hmac.compare_digest(given, secret.get_secret_value().encode())


async def _json_body(request: Request) -> object:
    payload = await request.body()  # bounded by the app's body size limit
    try:
        body: object = json.loads(payload)
    except ValueError:
        return None
    return body


_B2C_POSTS: dict[str, tuple[Callable[[object], B2cResult | None], str]] = {
    "result": (b2c_result, "B2C result"),
    "timeout": (b2c_timeout, "queue timeout"),
    "status": (status_result, "transaction status result"),
}


async def mpesa_b2c_callback(request: Request) -> Response:
    """What Daraja posts about a B2C refund: its result (ResultURL), its queue timeout
    (QueueTimeOutURL), or the result of a Transaction Status query about it. The same secret
    in the URL as the STK callback's (404 otherwise); recorded and applied in one
    transaction, once however often it is sent, and acknowledged as Daraja expects."""
    state = request.app.state
    post = _B2C_POSTS.get(request.path_params["kind"])
    if post is None or not _mpesa_secret_matches(request):
        return error_response(404, "NOT_FOUND", "Not found.")
    parse, kind = post
    body = await _json_body(request)
    result = parse(body)
    if result is None or not isinstance(body, dict):
        return error_response(400, "BAD_REQUEST", f"The body is not an M-Pesa {kind}.")
    await state.database.transaction(
        partial(
            mpesa_callbacks.apply_refund_result,
            result=result,
            type=kind,
            payload=body,
            now=state.services.clock(),
        )
    )
    return JSONResponse({"ResultCode": 0, "ResultDesc": "Accepted"})


async def paypal_webhook(request: Request) -> Response:
    """PayPal's events (https://developer.paypal.com/api/rest/webhooks/): each delivery is
    verified by PayPal itself (``POST /v1/notifications/verify-webhook-signature`` with its
    transmission headers and our webhook id), then recorded and applied in one transaction,
    once however often it is sent. A call to PayPal an event leads to (capturing an approved
    order) is made after the answer, outside that transaction; the worker makes it otherwise."""
    state = request.app.state
    webhook_id = state.settings.paypal_webhook_id
    gateway = state.services.payment_gateways.by_provider.get("PAYPAL")
    if not webhook_id or not isinstance(gateway, PayPalGateway):
        return error_response(404, "NOT_FOUND", "PayPal webhooks are not enabled here.")
    payload = await request.body()  # bounded by the app's body size limit
    try:
        event = await gateway.verify_webhook(request.headers, payload, webhook_id=webhook_id)
    except ProviderUnavailable:
        log.warning("PayPal could not verify a webhook delivery", exc_info=True)
        return error_response(503, "SERVICE_UNAVAILABLE", "The delivery could not be verified.")
    if event is None:
        return error_response(400, "BAD_SIGNATURE", "PayPal did not verify this delivery.")
    if not paypal_webhooks.well_formed(event):
        return error_response(400, "BAD_REQUEST", "The body is not a PayPal event.")
    clock, rules = state.services.clock, await state.services.current_booking_rules()
    outcome = await state.database.transaction(
        partial(paypal_webhooks.apply_event, event=event, now=clock(), rules=rules)
    )
    follow_up = None
    if outcome == Outcome.APPLIED:
        follow_up = paypal_webhooks.after_commit(
            state.database.transaction,
            state.services.payment_gateways,
            event,
            clock=clock,
            rules=rules,
        )
    return JSONResponse(
        {"received": True, "outcome": outcome},
        background=BackgroundTask(follow_up) if follow_up is not None else None,
    )


CALENDAR_FEED_READS_PER_MINUTE = 30  # importers poll every few hours; this is generous
_FEED_SINCE_DAYS = 30


async def calendar_feed(request: Request) -> Response:
    """A listing's nights as an iCalendar feed (services/calendar_sync.py), for other sites'
    importers. The token in the URL is the only credential; an unknown one is a 404. Answers
    ``ETag`` and ``Last-Modified`` and honours ``If-None-Match`` and ``If-Modified-Since``."""
    state = request.app.state
    token = request.path_params["token"]
    if not 32 <= len(token) <= 100:
        return error_response(404, "NOT_FOUND", "No such calendar.")
    now = state.services.clock()
    domain = urlsplit(state.settings.public_url).hostname or "roost"
    async with state.database.read_session() as session:
        feed = await calendar_sync.feed_for_token(session, token=token, now=now, domain=domain)
    if feed is None:
        return error_response(404, "NOT_FOUND", "No such calendar.")
    wait = await state.services.attempt_limits.limiter.hit(
        f"calendar-feed:{feed.listing_id}",
        limit=CALENDAR_FEED_READS_PER_MINUTE,
        window_seconds=60,
    )
    if wait is not None:
        return error_response(
            429, "RATE_LIMITED", "Too many reads of this calendar.", {"Retry-After": str(wait)}
        )
    etag = f'"{feed.etag}"'
    since = await _feed_changed_at(state.services.response_cache, feed, now)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(since, usegmt=True),
        "Cache-Control": "private, max-age=300",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, etag, since):
        return Response(status_code=304, headers=headers)
    return Response(
        calendar_sync.render(feed, stamp=since),
        media_type="text/calendar; charset=utf-8",
        headers=headers,
    )


async def _feed_changed_at(cache: Cache, feed: calendar_sync.Feed, now: datetime) -> datetime:
    """When the feed first read as it reads now. Nothing stores when a night was unblocked,
    so the time a new version is first served stands for it; a cache that forgot only moves
    Last-Modified later, which makes importers read once more, never miss a change."""
    key = f"calendar-feed:{feed.listing_id}"
    stored = await cache.get(key)
    if stored is not None:
        etag, _, seen = stored.decode().partition(" ")
        if etag == feed.etag:
            return datetime.fromtimestamp(int(seen), UTC)
    seen_at = now.astimezone(UTC).replace(microsecond=0)
    value = f"{feed.etag} {int(seen_at.timestamp())}".encode()
    await cache.set(key, value, ttl_seconds=_FEED_SINCE_DAYS * 86_400)
    return seen_at


def _not_modified(request: Request, etag: str, since: datetime) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match, when sent, decides; else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        given = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if given.tzinfo is None:
        return False
    return since <= given


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
    Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
    Route("/webhooks/mpesa/{secret}", mpesa_callback, methods=["POST"]),
    Route(
        "/webhooks/mpesa/{secret}/b2c/{kind:str}",
        mpesa_b2c_callback,
        methods=["POST"],
    ),
    Route("/webhooks/paypal", paypal_webhook, methods=["POST"]),
    Route("/calendar/{token:str}.ics", calendar_feed, methods=["GET"]),
]

exception_handlers: dict[type[Exception], Callable[..., Awaitable[Response]]] = {
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
}
