"""A local stand-in for PayPal's REST API, after PayPal's documentation of it.

- ``POST /v1/oauth2/token``: client credentials in Basic auth, ``grant_type=client_credentials``;
  answers a bearer token with ``expires_in``. Every other call needs a live token (401
  ``AUTHENTICATION_FAILURE`` otherwise).
- Orders v2: create (201, status ``CREATED``, or ``PAYER_ACTION_REQUIRED`` with a ``payer-action``
  link when ``payment_source.paypal`` is given), show, capture, authorize.
- Payments v2: show/capture/void an authorization, show/refund a capture.
- Payments v2: show a refund. A refund is ``COMPLETED`` at once, or, after
  ``refunds_pending()``, ``PENDING`` until ``finish_refund`` says how it ends.
- Webhooks: ``webhook`` makes a signed delivery (SHA256withRSA over ``transmission id|time|
  webhook id|crc32 of the body``); ``POST /v1/notifications/verify-webhook-signature`` checks it.
  Given an ``endpoint`` (a URL, the webhook's id, and an ASGI transport), the fake sends its
  events itself, as PayPal does, before the call that caused them answers:
  ``CHECKOUT.ORDER.APPROVED``, ``PAYMENT.CAPTURE.COMPLETED``, ``PAYMENT.AUTHORIZATION.VOIDED``
  and ``PAYMENT.CAPTURE.REFUNDED``; ``send`` delivers one again.
- ``PayPal-Request-Id`` on a POST: the same id on the same operation answers the first answer
  again and does nothing more.
- ``Prefer: return=representation`` answers the whole resource; otherwise the minimal one.
- Errors as PayPal writes them: ``{"name", "message", "debug_id", "details": [{"issue",
  "description"}], "links"}``.

The buyer's part, done in a browser at PayPal, is ``approve`` (or ``GET /checkoutnow?token=``).
``moves`` lists every movement of money, so tests can count them.
"""

import asyncio
import base64
import copy
import json
import re
import secrets
import string
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID = "roost-paypal-client"
CLIENT_SECRET = "roost-paypal-secret"

# PayPal's currency codes and the decimals it takes for each.
TWO_DECIMALS = "AUD BRL CAD CNY CZK DKK EUR HKD ILS MYR MXN NZD NOK PHP PLN GBP SGD SEK CHF THB USD"
DECIMALS = {
    **dict.fromkeys(TWO_DECIMALS.split(), 2),
    **dict.fromkeys(("JPY", "HUF", "TWD"), 0),
}
VALUE = re.compile(r"^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$")


@cache
def signing_key() -> rsa.RSAPrivateKey:
    """One key for every fake: making a 2048-bit key takes a good part of a second."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def paypal_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(17))


class PayPalError(Exception):
    def __init__(self, status: int, name: str, message: str, issue: str | None = None) -> None:
        self.status, self.name, self.message, self.issue = status, name, message, issue

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "name": self.name,
            "message": self.message,
            "debug_id": secrets.token_hex(6),
        }
        if self.issue:
            body["details"] = [{"issue": self.issue, "description": ISSUES.get(self.issue, "")}]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{self.issue}",
                "rel": "information_link",
            }
        ]
        return JSONResponse(body, status_code=self.status)


ISSUES = {
    "INSTRUMENT_DECLINED": "The instrument presented was either declined by the processor or "
    "bank, or it can't be used for this payment.",
    "CURRENCY_NOT_SUPPORTED": "Currency code is not currently supported.",
    "DECIMAL_PRECISION": "The value of the field should not be more than two decimal places.",
    "DECIMALS_NOT_SUPPORTED": "Decimal value not supported for the given currency.",
    "INVALID_PARAMETER_SYNTAX": "The value of a field does not conform to the expected format.",
    "ORDER_NOT_APPROVED": "Payer has not yet approved the Order for payment.",
    "ORDER_ALREADY_CAPTURED": "Order already captured.",
    "ORDER_ALREADY_AUTHORIZED": "Order already authorized.",
    "ACTION_DOES_NOT_MATCH_INTENT": "Order does not match the intent of the requested action.",
    "AUTHORIZATION_ALREADY_CAPTURED": "Authorization has been previously captured and hence "
    "cannot be captured again.",
    "AUTHORIZATION_VOIDED": "A voided authorization cannot be captured or reauthorized.",
    "PREVIOUSLY_CAPTURED": "Authorization has been previously captured and hence cannot be voided.",
    "PREVIOUSLY_VOIDED": "Authorization has been previously voided and hence cannot be voided "
    "again.",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "Capture amount exceeds allowable limit.",
    "CAPTURE_FULLY_REFUNDED": "The capture has already been fully refunded.",
    "REFUND_AMOUNT_EXCEEDED": "The refund amount must be less than or equal to the capture "
    "amount that has not yet been refunded.",
    "REFUND_CAPTURE_CURRENCY_MISMATCH": "Refund must be in the same currency as the capture.",
    "CANNOT_BE_ZERO_OR_NEGATIVE": "Must be greater than zero.",
    "INVALID_RESOURCE_ID": "Specified resource ID does not exist.",
    "INVALID_STRING_LENGTH": "The value of a field is either too short or too long.",
}


def unprocessable(issue: str) -> PayPalError:
    return PayPalError(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed "
        "business validation.",
        issue,
    )


def not_found() -> PayPalError:
    return PayPalError(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        "INVALID_RESOURCE_ID",
    )


def invalid_request(issue: str) -> PayPalError:
    return PayPalError(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue,
    )


def check_amount(amount: Any) -> tuple[Decimal, str]:
    if not isinstance(amount, dict):
        raise invalid_request("MISSING_REQUIRED_PARAMETER")
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(value, str) or not VALUE.match(value) or len(value) > 32:
        raise invalid_request("INVALID_PARAMETER_SYNTAX")
    if currency not in DECIMALS:
        raise unprocessable("CURRENCY_NOT_SUPPORTED")
    decimals = -int(Decimal(value).as_tuple().exponent)
    if decimals > DECIMALS[currency]:
        raise unprocessable(
            "DECIMALS_NOT_SUPPORTED" if DECIMALS[currency] == 0 else "DECIMAL_PRECISION"
        )
    return Decimal(value), currency


def money(value: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": f"{value:.{DECIMALS[currency]}f}"}


@dataclass
class PayPalEndpoint:
    url: str
    webhook_id: str
    transport: httpx.AsyncBaseTransport | None = None  # an ASGI app in the same process


@dataclass
class Delivery:
    event_type: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class FakePayPal:
    base_url: str = "http://127.0.0.1"
    token_seconds: int = 32_400
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    # (operation, PayPal-Request-Id) -> the first answer.
    answered: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    # Every movement of money: (kind, id, amount, currency).
    moves: list[tuple[str, str, Decimal, str]] = field(default_factory=list)
    declined_orders: set[str] = field(default_factory=set)
    failures: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    webhook_key: rsa.RSAPrivateKey = field(default_factory=lambda: signing_key())
    endpoint: PayPalEndpoint | None = None
    sent: list[Delivery] = field(default_factory=list)  # every event made, in order
    answers: list[tuple[str, int]] = field(default_factory=list)  # (event type, HTTP status)
    refund_status: str = "COMPLETED"  # what a new refund is
    _unsent: list[Delivery] = field(default_factory=list)

    # Webhooks sent by the fake itself.

    def _event(self, event_type: str, resource: dict[str, Any]) -> None:
        if self.endpoint is None:
            return
        snapshot = json.loads(json.dumps(resource))
        headers, body = self.webhook(event_type, snapshot, webhook_id=self.endpoint.webhook_id)
        delivery = Delivery(event_type, headers, body)
        self.sent.append(delivery)
        self._unsent.append(delivery)

    async def deliver(self) -> None:
        """Sends the events made so far and not sent."""
        unsent, self._unsent = self._unsent, []
        for delivery in unsent:
            await self.send(delivery)

    def take_unsent(self) -> list[Delivery]:
        """The events made and not sent, left for the test to send."""
        unsent, self._unsent = self._unsent, []
        return unsent

    async def send(self, delivery: Delivery) -> httpx.Response:
        """Posts a delivery (again) to the endpoint, as signed when it was made."""
        assert self.endpoint is not None
        async with httpx.AsyncClient(transport=self.endpoint.transport, timeout=10) as http:
            response = await http.post(
                self.endpoint.url, content=delivery.body, headers=delivery.headers
            )
        self.answers.append((delivery.event_type, response.status_code))
        return response

    def refunds_pending(self) -> None:
        """New refunds wait (``PENDING``) until ``finish_refund``."""
        self.refund_status = "PENDING"

    async def finish_refund(
        self, refund_id: str, status: str = "COMPLETED", *, deliver: bool = True
    ) -> None:
        """A pending refund ends: COMPLETED (its webhook says so), or FAILED or CANCELLED."""
        refund = self.refunds[refund_id]
        assert refund["status"] == "PENDING", refund["status"]
        refund["status"] = status
        refund["update_time"] = self._now()
        if status == "COMPLETED":
            self.moves.append(("refund", refund_id, *check_amount(refund["amount"])))
            self._event("PAYMENT.CAPTURE.REFUNDED", self._public(refund))
        if deliver:
            await self.deliver()
        else:
            self._unsent.clear()

    @staticmethod
    def _public(refund: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in refund.items() if k != "capture_id"}

    # What a test does in PayPal's stead.

    def approve(self, order_id: str, *, instrument_declined: bool = False) -> None:
        """The buyer logs in at PayPal and approves; the funding instrument may later be
        declined, as PayPal reports it at capture or authorization."""
        order = self.orders[order_id]
        assert order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"), order["status"]
        order["status"] = "APPROVED"
        order["payer"] = {
            "name": {"given_name": "Ana", "surname": "Souza"},
            "email_address": "buyer@example.com",
            "payer_id": paypal_id()[:13],
        }
        if instrument_declined:
            self.declined_orders.add(order_id)
        self._event("CHECKOUT.ORDER.APPROVED", order)

    def expire_tokens(self) -> None:
        """PayPal stops honouring every token issued (as when one expires early)."""
        self.tokens.clear()

    def delay_next(self, *seconds: float) -> None:
        """The next calls after the token (one per delay) answer this late."""
        self.delays.extend(seconds)

    def fail_next(self, *statuses: int) -> None:
        """The next calls after the token (one per status) answer these server errors."""
        self.failures.extend(statuses)

    def webhook(
        self, event_type: str, resource: dict[str, Any], *, webhook_id: str
    ) -> tuple[dict[str, str], bytes]:
        """A delivery of an event to the webhook ``webhook_id``: its headers and raw body,
        signed as PayPal signs (SHA256withRSA over ``transmission id|time|webhook id|crc32``)."""
        event = {
            "id": f"WH-{paypal_id()}",
            "event_version": "1.0",
            "create_time": self._now(),
            "resource_type": event_type.split(".")[-2].lower(),
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
            "links": [],
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        transmission_id, transmission_time = secrets.token_hex(16), self._now()
        return {
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": f"{self.base_url}/v1/notifications/certs/CERT-fake",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self._sign(
                transmission_id, transmission_time, webhook_id, body
            ),
            "Content-Type": "application/json",
        }, body

    def _signed(self, transmission_id: str, time_: str, webhook_id: str, body: bytes) -> bytes:
        return f"{transmission_id}|{time_}|{webhook_id}|{zlib.crc32(body)}".encode()

    def _sign(self, transmission_id: str, time_: str, webhook_id: str, body: bytes) -> str:
        message = self._signed(transmission_id, time_, webhook_id, body)
        signature = self.webhook_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    # Routes.

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def _link(self, path: str, rel: str, method: str = "GET") -> dict[str, str]:
        return {"href": f"{self.base_url}{path}", "rel": rel, "method": method}

    async def token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client Authentication failed"},
                status_code=401,
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"},
                status_code=400,
            )
        token = f"A21AA{secrets.token_urlsafe(32)}"
        self.tokens[token] = time.monotonic() + self.token_seconds
        self.tokens_issued += 1
        return JSONResponse(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": self.token_seconds,
                "nonce": f"{self._now()}{secrets.token_hex(8)}",
            }
        )

    async def checkout_now(self, request: Request) -> Response:
        self.approve(request.query_params["token"])
        await self.deliver()
        return Response("approved", media_type="text/plain")

    def _api(self, operation: str, handler: Any) -> Any:
        """Authentication, injected failures, ``PayPal-Request-Id`` and errors around a route."""

        async def route(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            auth = request.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ")
            if not auth.startswith("Bearer ") or self.tokens.get(token, 0) < time.monotonic():
                return JSONResponse(
                    {
                        "name": "AUTHENTICATION_FAILURE",
                        "message": "Authentication failed due to invalid authentication "
                        "credentials or a missing Authorization header.",
                        "links": [],
                    },
                    status_code=401,
                )
            if self.delays:
                await asyncio.sleep(self.delays.pop(0))
            if self.failures:
                return JSONResponse(
                    {
                        "name": "INTERNAL_SERVER_ERROR",
                        "message": "An internal server error occurred.",
                        "debug_id": secrets.token_hex(6),
                    },
                    status_code=self.failures.pop(0),
                )
            request_id = request.headers.get("paypal-request-id")
            key = (f"{operation}:{request.url.path}", request_id or "")
            if request.method == "POST" and request_id and key in self.answered:
                status, answer = self.answered[key]
            else:
                body = await request.json() if await request.body() else {}
                try:
                    status, answer = handler(request.path_params, body)
                except PayPalError as error:
                    return error.response()
                if request.method == "POST" and request_id:
                    self.answered[key] = (status, copy.deepcopy(answer))
            await self.deliver()
            minimal = "return=representation" not in request.headers.get("prefer", "")
            if minimal and operation == "authorizations.void":
                return Response(status_code=204)
            if minimal and isinstance(answer, dict):
                answer = {k: answer[k] for k in ("id", "status", "links") if k in answer}
            return JSONResponse(answer, status_code=status)

        return route

    def verify_webhook_signature(
        self, params: dict[str, Any], body: dict[str, Any]
    ) -> tuple[int, Any]:
        names = ("auth_algo", "cert_url", "transmission_id", "transmission_sig")
        names += ("transmission_time", "webhook_id", "webhook_event")
        if any(not body.get(name) for name in names):
            raise PayPalError(
                400,
                "VALIDATION_ERROR",
                "Invalid request - see details",
                "MISSING_REQUIRED_PARAMETER",
            )
        # The event as delivered: the body PayPal sent, which this fake writes compactly.
        delivered = json.dumps(body["webhook_event"], separators=(",", ":")).encode()
        message = self._signed(
            body["transmission_id"], body["transmission_time"], body["webhook_id"], delivered
        )
        try:
            self.webhook_key.public_key().verify(
                base64.b64decode(body["transmission_sig"]),
                message,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            verified = body["auth_algo"] == "SHA256withRSA"
        except (ValueError, InvalidSignature):
            verified = False
        return 200, {"verification_status": "SUCCESS" if verified else "FAILURE"}

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found()
        return order

    def create_order(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise invalid_request("INVALID_PARAMETER_VALUE")
        units = body.get("purchase_units")
        if not isinstance(units, list) or not 1 <= len(units) <= 10:
            raise invalid_request("MISSING_REQUIRED_PARAMETER")
        stored_units = []
        for unit in units:
            value, currency = check_amount(unit.get("amount"))
            for name in ("custom_id", "invoice_id", "description"):
                if len(str(unit.get(name, ""))) > 127:
                    raise invalid_request("INVALID_STRING_LENGTH")
            stored_units.append(
                {
                    **unit,
                    "reference_id": unit.get("reference_id", "default"),
                    "amount": money(value, currency),
                }  # fmt: skip
            )
        order_id = paypal_id()
        payer_action = "paypal" in (body.get("payment_source") or {})
        approve = {
            "href": f"{self.base_url}/checkoutnow?token={order_id}",
            "rel": "payer-action" if payer_action else "approve",
            "method": "GET",
        }
        order = {
            "id": order_id,
            "intent": intent,
            "status": "PAYER_ACTION_REQUIRED" if payer_action else "CREATED",
            "purchase_units": stored_units,
            "create_time": self._now(),
            "links": [self._link(f"/v2/checkout/orders/{order_id}", "self"), approve],
        }
        if payer_action:
            order["payment_source"] = {"paypal": {}}
        self.orders[order_id] = order
        return 201, order

    def show_order(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._order(params["order_id"])

    def _complete(self, order: dict[str, Any], intent: str) -> dict[str, Any]:
        if order["intent"] != intent:
            raise unprocessable("ACTION_DOES_NOT_MATCH_INTENT")
        if order["status"] == "COMPLETED":
            raise unprocessable(
                "ORDER_ALREADY_CAPTURED" if intent == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED"
            )
        if order["status"] != "APPROVED":
            raise unprocessable("ORDER_NOT_APPROVED")
        if order["id"] in self.declined_orders:
            raise unprocessable("INSTRUMENT_DECLINED")
        order["status"] = "COMPLETED"
        order["update_time"] = self._now()
        return order

    def capture_order(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        order = self._complete(self._order(params["order_id"]), "CAPTURE")
        for unit in order["purchase_units"]:
            capture = self._new_capture(unit["amount"], unit, order["id"], None)
            unit["payments"] = {"captures": [capture]}
        return 201, order

    def authorize_order(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        order = self._complete(self._order(params["order_id"]), "AUTHORIZE")
        for unit in order["purchase_units"]:
            authorization_id = paypal_id()
            authorization = {
                "id": authorization_id,
                "status": "CREATED",
                "amount": dict(unit["amount"]),
                "custom_id": unit.get("custom_id"),
                "invoice_id": unit.get("invoice_id"),
                "expiration_time": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 29 * 86_400)
                ),
                "create_time": self._now(),
                "supplementary_data": {"related_ids": {"order_id": order["id"]}},
                "links": [
                    self._link(f"/v2/payments/authorizations/{authorization_id}", "self"),
                    self._link(
                        f"/v2/payments/authorizations/{authorization_id}/capture",
                        "capture",
                        "POST",
                    ),
                    self._link(
                        f"/v2/payments/authorizations/{authorization_id}/void", "void", "POST"
                    ),
                ],
            }
            self.authorizations[authorization_id] = authorization
            unit["payments"] = {"authorizations": [authorization]}
            self.moves.append(
                ("authorize", authorization_id, *check_amount(authorization["amount"]))
            )
        return 201, order

    def _new_capture(
        self,
        amount: dict[str, str],
        unit: dict[str, Any],
        order_id: str,
        authorization_id: str | None,
    ) -> dict[str, Any]:
        capture_id = paypal_id()
        related = {"order_id": order_id}
        if authorization_id:
            related["authorization_id"] = authorization_id
        capture = {
            "id": capture_id,
            "status": "COMPLETED",
            "amount": dict(amount),
            "final_capture": True,
            "custom_id": unit.get("custom_id"),
            "invoice_id": unit.get("invoice_id"),
            "create_time": self._now(),
            "supplementary_data": {"related_ids": related},
            "links": [
                self._link(f"/v2/payments/captures/{capture_id}", "self"),
                self._link(f"/v2/payments/captures/{capture_id}/refund", "refund", "POST"),
            ],
        }
        self.captures[capture_id] = capture
        self.moves.append(("capture", capture_id, *check_amount(amount)))
        self._event("PAYMENT.CAPTURE.COMPLETED", capture)
        return capture

    def _authorization(self, authorization_id: str) -> dict[str, Any]:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            raise not_found()
        return authorization

    def show_authorization(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._authorization(params["authorization_id"])

    def capture_authorization(
        self, params: dict[str, Any], body: dict[str, Any]
    ) -> tuple[int, Any]:
        authorization = self._authorization(params["authorization_id"])
        if authorization["status"] == "VOIDED":
            raise unprocessable("AUTHORIZATION_VOIDED")
        if authorization["status"] == "CAPTURED":
            raise unprocessable("AUTHORIZATION_ALREADY_CAPTURED")
        held, currency = check_amount(authorization["amount"])
        amount = body.get("amount", authorization["amount"])
        value, asked_currency = check_amount(amount)
        if asked_currency != currency or value <= 0 or value > held:
            raise unprocessable("MAX_CAPTURE_AMOUNT_EXCEEDED")
        order_id = authorization["supplementary_data"]["related_ids"]["order_id"]
        order = self.orders[order_id]
        unit = order["purchase_units"][0]
        capture = self._new_capture(money(value, currency), unit, order_id, authorization["id"])
        capture["final_capture"] = bool(body.get("final_capture", False))
        unit["payments"].setdefault("captures", []).append(capture)
        authorization["status"] = (
            "CAPTURED" if capture["final_capture"] or value == held else "PARTIALLY_CAPTURED"
        )
        return 201, capture

    def void_authorization(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        authorization = self._authorization(params["authorization_id"])
        if authorization["status"] == "VOIDED":
            raise unprocessable("PREVIOUSLY_VOIDED")
        if authorization["status"] in ("CAPTURED", "PARTIALLY_CAPTURED"):
            raise unprocessable("PREVIOUSLY_CAPTURED")
        authorization["status"] = "VOIDED"
        self.moves.append(("void", authorization["id"], *check_amount(authorization["amount"])))
        self._event("PAYMENT.AUTHORIZATION.VOIDED", authorization)
        return 200, authorization

    def _capture(self, capture_id: str) -> dict[str, Any]:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise not_found()
        return capture

    def show_capture(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        return 200, self._capture(params["capture_id"])

    def refund_capture(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        capture = self._capture(params["capture_id"])
        if capture["status"] == "REFUNDED":
            raise unprocessable("CAPTURE_FULLY_REFUNDED")
        captured, currency = check_amount(capture["amount"])
        refunded = sum(
            (
                check_amount(refund["amount"])[0]
                for refund in self.refunds.values()
                if refund["capture_id"] == capture["id"]
                and refund["status"] not in ("FAILED", "CANCELLED")
            ),
            Decimal(0),
        )
        left = captured - refunded
        value, asked_currency = (
            check_amount(body["amount"]) if "amount" in body else (left, currency)
        )
        if asked_currency != currency:
            raise unprocessable("REFUND_CAPTURE_CURRENCY_MISMATCH")
        if value <= 0:
            raise unprocessable("CANNOT_BE_ZERO_OR_NEGATIVE")
        if value > left:
            raise unprocessable("REFUND_AMOUNT_EXCEEDED")
        refund_id = paypal_id()
        refund = {
            "id": refund_id,
            "status": self.refund_status,
            "amount": money(value, currency),
            "invoice_id": body.get("invoice_id", capture.get("invoice_id")),
            "custom_id": body.get("custom_id", capture.get("custom_id")),
            "create_time": self._now(),
            "links": [
                self._link(f"/v2/payments/refunds/{refund_id}", "self"),
                self._link(f"/v2/payments/captures/{capture['id']}", "up"),
            ],
        }
        self.refunds[refund_id] = {**refund, "capture_id": capture["id"]}
        capture["status"] = "REFUNDED" if value == left else "PARTIALLY_REFUNDED"
        if refund["status"] == "COMPLETED":
            self.moves.append(("refund", refund_id, value, currency))
            self._event("PAYMENT.CAPTURE.REFUNDED", refund)
        return 201, refund

    def show_refund(self, params: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        refund = self.refunds.get(params["refund_id"])
        if refund is None:
            raise not_found()
        return 200, self._public(refund)

    def app(self) -> Starlette:
        def post(path: str, name: str, handler: Any) -> Route:
            return Route(path, self._api(name, handler), methods=["POST"])

        def get(path: str, name: str, handler: Any) -> Route:
            return Route(path, self._api(name, handler), methods=["GET"])

        return Starlette(
            routes=[
                Route("/v1/oauth2/token", self.token, methods=["POST"]),
                Route("/checkoutnow", self.checkout_now),
                post(
                    "/v1/notifications/verify-webhook-signature",
                    "webhooks.verify",
                    self.verify_webhook_signature,
                ),
                post("/v2/checkout/orders", "orders.create", self.create_order),
                get("/v2/checkout/orders/{order_id}", "orders.get", self.show_order),
                post(
                    "/v2/checkout/orders/{order_id}/capture", "orders.capture", self.capture_order
                ),
                post(
                    "/v2/checkout/orders/{order_id}/authorize",
                    "orders.authorize",
                    self.authorize_order,
                ),
                get(
                    "/v2/payments/authorizations/{authorization_id}",
                    "authorizations.get",
                    self.show_authorization,
                ),
                post(
                    "/v2/payments/authorizations/{authorization_id}/capture",
                    "authorizations.capture",
                    self.capture_authorization,
                ),
                post(
                    "/v2/payments/authorizations/{authorization_id}/void",
                    "authorizations.void",
                    self.void_authorization,
                ),
                get("/v2/payments/captures/{capture_id}", "captures.get", self.show_capture),
                post(
                    "/v2/payments/captures/{capture_id}/refund",
                    "captures.refund",
                    self.refund_capture,
                ),
                get("/v2/payments/refunds/{refund_id}", "refunds.get", self.show_refund),
            ]
        )
