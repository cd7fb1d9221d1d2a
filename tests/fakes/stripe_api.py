"""A local stand-in for the part of Stripe's API that Roost uses, after Stripe's API reference
(https://docs.stripe.com/api), not after Roost's client: form-encoded bodies with bracketed
nested keys (``metadata[booking_id]``), ``Authorization: Bearer <key>``, an ``Idempotency-Key``
whose replay answers the first response (``Idempotent-Replayed: true``) and whose reuse with
other parameters is an ``idempotency_error``, JSON objects with their ``object`` type, and errors
as ``{"error": {"type", "code", "message", "decline_code"}}`` with Stripe's HTTP statuses.

PaymentIntents: created ``requires_payment_method``; confirmed (what Stripe.js does in the
browser, here through ``POST /v1/payment_intents/{id}/confirm`` with one of Stripe's test
PaymentMethods, see ``TEST_CARDS``) to ``succeeded`` or, with ``capture_method=manual``,
``requires_capture``; a declined card answers 402 and leaves it ``requires_payment_method``
with its ``last_payment_error``; captured to ``succeeded``; canceled. Refunds of a captured
intent, never more than what is left (pending refunds count; failed and canceled ones do not):
``succeeded`` at once, or, after ``refunds_pending()``, ``pending`` until ``finish_refund``
says how they end, as Stripe's slower refunds do; retrieved with ``GET /v1/refunds/{id}``.
``dashboard_refund`` refunds as a person in Stripe's dashboard would.

Webhooks: given a ``WebhookEndpoint`` (a URL and its signing secret), the fake posts a signed
Event (``Stripe-Signature: t=...,v1=...``) for each change of an intent, as Stripe does:
``payment_intent.succeeded``, ``.amount_capturable_updated``, ``.payment_failed``,
``.canceled``, ``charge.refunded``, and ``refund.created``, ``.updated`` and ``.failed``
(``charge.refund.updated`` too). It delivers before the API call that caused it answers,
so a test need not wait (Stripe sends them moments later); ``send`` delivers any event again.

Connect (host payouts): Express accounts (``POST /v1/accounts``), onboarding links
(``POST /v1/account_links``) and transfers (``POST /v1/transfers``, each recorded in
``transfers``); ``onboard`` finishes an account's onboarding as the host would on Stripe's pages
and sends its ``account.updated``; ``reverse`` reverses a transfer (``transfer.reversed``).
``declined_transfers`` makes the next transfers fail as an empty platform balance does,
``forget_keys`` prunes idempotency keys as Stripe does after a day, and ``before_answer`` runs
before any answer is sent, after the webhooks it caused (a test can hold a transfer's answer
there); ``before_events`` runs before those webhooks. A key used again while its first request
is still being answered is a 409 ``idempotency_key_in_use``, as at Stripe.

``FakeStripe.outage`` makes the next requests answer 500 (or, with ``hang=True``, answer only
after ``HANG_SECONDS``, past a short client timeout), as Stripe does when it has trouble.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET_KEY = "sk_test_roost_fake"
PUBLISHABLE_KEY = "pk_test_roost_fake"
HANG_SECONDS = 1.0

# Stripe's test PaymentMethods (https://docs.stripe.com/testing): what each card does.
TEST_CARDS: dict[str, tuple[str, str] | None] = {
    "pm_card_visa": None,
    "pm_card_mastercard": None,
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
}
DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}
CANCELABLE = {
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
}


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
        payment_intent: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"type": type_, "message": message}
        for name, value in (
            ("code", code),
            ("decline_code", decline_code),
            ("param", param),
            ("payment_intent", payment_intent),
        ):
            if value is not None:
                error[name] = value
        self.status = status
        self.body = {"error": error}


def parse_form(body: bytes) -> dict[str, Any]:
    """``a[b][c]=1&list[0]=x`` as nested dicts (Stripe's encoding of nested parameters)."""
    parsed: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head, _, rest = key.partition("[")
        path = [head] + [part.rstrip("]") for part in rest.split("[")] if rest else [head]
        node = parsed
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return parsed


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class Outage:
    remaining: int
    status: int = 500
    hang: bool = False


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``payload`` signed at ``timestamp``."""
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


@dataclass
class WebhookEndpoint:
    url: str
    secret: str
    transport: httpx.AsyncBaseTransport | None = None  # an ASGI app in the same process


def _missing(param: str) -> StripeError:
    return StripeError(
        400, "invalid_request_error", f"Missing required param: {param}.",
        code="parameter_missing", param=param,
    )  # fmt: skip


class ConnectApi:
    """Connect's part of the fake: accounts, onboarding links, transfers and reversals."""

    accounts: dict[str, dict[str, Any]]
    account_links: list[dict[str, Any]]
    transfers: dict[str, dict[str, Any]]
    declined_transfers: int

    def event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _deliver(self) -> None:
        raise NotImplementedError

    def _connect(self, request: Request, params: dict[str, Any]) -> Any:
        path = request.url.path
        account_id = request.path_params.get("account")
        transfer_id = request.path_params.get("transfer")
        if path == "/v1/accounts":
            return self.create_account(params)
        if account_id is not None:
            return self._account(account_id)
        if path == "/v1/account_links":
            return self.create_account_link(params)
        if path == "/v1/transfers" and request.method == "GET":
            return self.list_transfers(dict(request.query_params))
        if path == "/v1/transfers":
            return self.create_transfer(params)
        if path.endswith("/reversals"):
            return self.reverse(transfer_id)
        return self._transfer(transfer_id)

    def _account(self, account_id: str) -> dict[str, Any]:
        account = self.accounts.get(account_id)
        if account is None:
            raise StripeError(
                404, "invalid_request_error", f"No such account: '{account_id}'",
                code="resource_missing", param="account",
            )  # fmt: skip
        return account

    def create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("type") not in ("express", "standard", "custom"):
            raise StripeError(
                400, "invalid_request_error", "Invalid type: must be one of express, standard, "
                "or custom", param="type",
            )  # fmt: skip
        requested = {
            name: "inactive"
            for name, wanted in (params.get("capabilities") or {}).items()
            if str((wanted or {}).get("requested")).lower() == "true"
        }
        account = {
            "id": _id("acct"),
            "object": "account",
            "type": params["type"],
            "country": params.get("country", "US"),
            "email": params.get("email"),
            "capabilities": requested,
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        self.accounts[account["id"]] = account
        return account

    def create_account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("account", "type", "return_url", "refresh_url"):
            if not params.get(name):
                raise _missing(name)
        account = self._account(params["account"])
        if params["type"] not in ("account_onboarding", "account_update"):
            raise StripeError(400, "invalid_request_error", "Invalid type.", param="type")
        now = int(time.time())
        link = {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"https://connect.stripe.com/setup/e/{account['id']}/{secrets.token_hex(8)}",
        }
        self.account_links.append(link | {"params": params})
        return link

    async def onboard(self, account_id: str, *, payouts_enabled: bool = True) -> dict[str, Any]:
        """The host finishes Stripe's onboarding pages: Stripe sends ``account.updated``."""
        account = self._account(account_id)
        account.update(
            details_submitted=True,
            charges_enabled=payouts_enabled,
            payouts_enabled=payouts_enabled,
            capabilities=dict.fromkeys(
                account["capabilities"], "active" if payouts_enabled else "inactive"
            ),
        )
        self.event("account.updated", account)
        await self._deliver()
        return account

    def create_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("amount", "currency", "destination"):
            if not params.get(name):
                raise _missing(name)
        destination = self._account(params["destination"])
        amount = int(params["amount"])
        if amount < 1:
            raise StripeError(
                400, "invalid_request_error", "Amount must be at least 1.",
                code="amount_too_small", param="amount",
            )  # fmt: skip
        if destination["capabilities"].get("transfers") != "active":
            raise StripeError(
                400, "invalid_request_error",
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
            )  # fmt: skip
        if self.declined_transfers > 0:
            self.declined_transfers -= 1
            raise StripeError(
                400, "invalid_request_error",
                "You have insufficient available funds in your Stripe account.",
                code="balance_insufficient",
            )  # fmt: skip
        transfer_id = _id("tr")
        transfer = {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": _id("txn"),
            "created": int(time.time()),
            "currency": params["currency"].lower(),
            "description": params.get("description"),
            "destination": destination["id"],
            "destination_payment": _id("py"),
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "reversals": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/transfers/{transfer_id}/reversals",
            },
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": params.get("transfer_group"),
        }
        self.transfers[transfer_id] = transfer
        self.event("transfer.created", transfer)
        return transfer

    def list_transfers(self, query: dict[str, str]) -> dict[str, Any]:
        """Newest first, filtered by ``transfer_group`` and ``destination`` when given."""
        limit = int(query.get("limit", 10))
        if not 1 <= limit <= 100:
            raise StripeError(400, "invalid_request_error", "Invalid limit.", param="limit")
        found = [
            transfer
            for transfer in reversed(self.transfers.values())
            if query.get("transfer_group") in (None, transfer["transfer_group"])
            and query.get("destination") in (None, transfer["destination"])
        ]
        return {
            "object": "list",
            "url": "/v1/transfers",
            "has_more": len(found) > limit,
            "data": found[:limit],
        }

    def forget_keys(self) -> None:
        """What Stripe does to idempotency keys at least a day old: a key sent again makes a
        new request."""
        raise NotImplementedError

    def _transfer(self, transfer_id: str) -> dict[str, Any]:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise StripeError(
                404, "invalid_request_error", f"No such transfer: '{transfer_id}'",
                code="resource_missing", param="id",
            )  # fmt: skip
        return transfer

    def reverse(self, transfer_id: str) -> dict[str, Any]:
        """The whole transfer taken back (from Stripe's dashboard, say)."""
        transfer = self._transfer(transfer_id)
        left = transfer["amount"] - transfer["amount_reversed"]
        reversal = {
            "id": _id("trr"),
            "object": "transfer_reversal",
            "amount": left,
            "currency": transfer["currency"],
            "transfer": transfer_id,
            "created": int(time.time()),
            "metadata": {},
        }
        transfer["reversals"]["data"].append(reversal)
        transfer["reversals"]["total_count"] += 1
        transfer.update(amount_reversed=transfer["amount"], reversed=True)
        self.event("transfer.reversed", transfer)
        return reversal


@dataclass
class FakeStripe(ConnectApi):
    """The account's state: intents, refunds, and answers kept per idempotency key."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = field(
        default_factory=dict
    )
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    endpoint: WebhookEndpoint | None = None
    clock: Callable[[], float] = time.time  # when events are made and signed
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (event id, status)
    refund_status: str = "succeeded"  # what a new refund is
    _outage: Outage | None = None
    _unsent: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_links: list[dict[str, Any]] = field(default_factory=list)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    declined_transfers: int = 0
    # Awaited with (method, path) once an answer is ready (and kept for its idempotency key):
    # ``before_events`` before the webhooks the request caused are sent (until then Roost
    # hears nothing of what it did), ``before_answer`` after them, before the answer is sent.
    before_events: Callable[[str, str], Awaitable[None]] | None = None
    before_answer: Callable[[str, str], Awaitable[None]] | None = None
    keys_in_flight: set[str] = field(default_factory=set)  # a second use meanwhile is a 409

    def forget_keys(self) -> None:
        self.replies.clear()

    def refunds_pending(self) -> None:
        """New refunds wait (``pending``) until ``finish_refund``."""
        self.refund_status = "pending"

    async def finish_refund(
        self, refund_id: str, status: str = "succeeded", *, deliver: bool = True
    ) -> list[dict[str, Any]]:
        """A pending refund ends: ``succeeded``, or ``failed`` (the money comes back to the
        account) or ``canceled``. Answers the events it made, delivered unless told not to."""
        refund = self.refunds[refund_id]
        assert refund["status"] in ("pending", "requires_action"), refund["status"]
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
        made = [self.event("refund.updated", refund), self.event("charge.refund.updated", refund)]
        if status == "failed":
            made.append(self.event("refund.failed", refund))
        if deliver:
            await self._deliver()
        else:
            self._unsent = [event for event in self._unsent if event not in made]
        return made

    async def dashboard_refund(self, intent_id: str, amount: int) -> dict[str, Any]:
        """A person refunds in Stripe's dashboard: no idempotency key, no metadata of ours."""
        refund = self.refund({"payment_intent": intent_id, "amount": str(amount)})
        await self._deliver()
        return refund

    def _refunded(self, intent_id: str) -> int:
        return sum(
            refund["amount"]
            for refund in self.refunds.values()
            if refund["payment_intent"] == intent_id
            and refund["status"] not in ("failed", "canceled")
        )

    # Webhooks.

    def event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        """An Event of ``obj`` as it is now, to be sent after the current request."""
        event = {
            "id": _id("evt"),
            "object": "event",
            "api_version": "2025-09-30.clover",
            "created": int(self.clock()),
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        self.events.append(event)
        self._unsent.append(event)
        return event

    async def send(self, event: dict[str, Any], *, signed_at: int | None = None) -> httpx.Response:
        """Posts ``event`` to the endpoint, signed as Stripe signs."""
        assert self.endpoint is not None
        payload = json.dumps(event).encode()
        timestamp = int(self.clock()) if signed_at is None else signed_at
        async with httpx.AsyncClient(transport=self.endpoint.transport) as http:
            response = await http.post(
                self.endpoint.url,
                content=payload,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": stripe_signature(payload, self.endpoint.secret, timestamp),
                },
            )
        self.deliveries.append((event["id"], response.status_code))
        return response

    async def _deliver(self) -> None:
        unsent, self._unsent = self._unsent, []
        if self.endpoint is not None:
            for event in unsent:
                await self.send(event)

    def outage(self, requests: int = 1, *, status: int = 500, hang: bool = False) -> None:
        self._outage = Outage(requests, status, hang)

    # Objects, as Stripe's API reference shows them.

    def _intent(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            amount = int(params["amount"])
            currency = params["currency"]
        except (KeyError, ValueError):
            raise StripeError(
                400, "invalid_request_error", "Missing required param: amount.",
                code="parameter_missing", param="amount",
            ) from None  # fmt: skip
        if amount < 1:
            raise StripeError(
                400, "invalid_request_error", "Amount must be at least 1.",
                code="amount_too_small", param="amount",
            )  # fmt: skip
        capture_method = params.get("capture_method", "automatic")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise StripeError(
                400, "invalid_request_error", f"Invalid capture_method: {capture_method}",
                param="capture_method",
            )  # fmt: skip
        intent_id = _id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": currency.lower(),
            "capture_method": capture_method,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "description": params.get("description"),
            "latest_charge": None,
            "last_payment_error": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "payment_method": None,
            "status": "requires_payment_method",
            "canceled_at": None,
            "cancellation_reason": None,
        }
        self.intents[intent_id] = intent
        return intent

    def _find(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise StripeError(
                404, "invalid_request_error", f"No such payment_intent: '{intent_id}'",
                code="resource_missing", param="intent",
            )  # fmt: skip
        return intent

    @staticmethod
    def _unexpected(intent: dict[str, Any], action: str) -> StripeError:
        return StripeError(
            400,
            "invalid_request_error",
            f"You cannot {action} this PaymentIntent because it has a status of "
            f"{intent['status']}.",
            code="payment_intent_unexpected_state",
            payment_intent=intent,
        )

    def confirm(self, intent_id: str, payment_method: str) -> dict[str, Any]:
        intent = self._find(intent_id)
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise self._unexpected(intent, "confirm")
        if payment_method not in TEST_CARDS:
            raise StripeError(
                400, "invalid_request_error", f"No such PaymentMethod: '{payment_method}'",
                code="resource_missing", param="payment_method",
            )  # fmt: skip
        intent["payment_method"] = payment_method
        declined = TEST_CARDS[payment_method]
        if declined is not None:
            code, decline_code = declined
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": DECLINE_MESSAGES[decline_code],
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.event("payment_intent.payment_failed", intent)
            raise StripeError(
                402, "card_error", error["message"], code=code, decline_code=decline_code,
                payment_intent=intent,
            )  # fmt: skip
        intent["latest_charge"] = _id("ch")
        intent["last_payment_error"] = None
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self.event("payment_intent.amount_capturable_updated", intent)
        else:
            intent.update(status="succeeded", amount_received=intent["amount"])
            self.event("payment_intent.succeeded", intent)
        return intent

    def capture(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._find(intent_id)
        if intent["status"] != "requires_capture":
            raise self._unexpected(intent, "capture")
        amount = int(params.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            raise StripeError(
                400, "invalid_request_error",
                "The amount to capture is greater than the amount capturable.",
                code="amount_too_large", param="amount_to_capture",
            )  # fmt: skip
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.event("payment_intent.succeeded", intent)
        return intent

    def cancel(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._find(intent_id)
        if intent["status"] not in CANCELABLE:
            raise self._unexpected(intent, "cancel")
        intent.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=int(time.time()),
            cancellation_reason=params.get("cancellation_reason"),
        )
        self.event("payment_intent.canceled", intent)
        return intent

    def refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        if intent_id is None:
            raise StripeError(
                400, "invalid_request_error", "One of `charge` or `payment_intent` is required.",
                code="parameter_missing",
            )  # fmt: skip
        intent = self._find(intent_id)
        if intent["status"] != "succeeded":
            raise StripeError(
                400, "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable" if intent["status"] == "canceled" else None,
            )  # fmt: skip
        refunded = self._refunded(intent_id)
        left = intent["amount_received"] - refunded
        amount = int(params.get("amount", left))
        if amount > left or amount < 1:
            raise StripeError(
                400, "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large" if amount > left else "amount_too_small", param="amount",
            )  # fmt: skip
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent_id,
            "metadata": params.get("metadata", {}),
            "reason": params.get("reason"),
            "status": self.refund_status,
            "failure_reason": None,
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        self.event("refund.created", refund)
        charge = {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount_received"],
            "amount_refunded": refunded + amount,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "metadata": intent["metadata"],
            "refunded": refunded + amount == intent["amount_received"],
        }
        self.event("charge.refunded", charge)
        return refund

    # HTTP.

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/payment_intents", self._endpoint, methods=["POST"]),
                Route("/v1/payment_intents/{id}", self._endpoint, methods=["GET", "POST"]),
                Route("/v1/payment_intents/{id}/{action}", self._endpoint, methods=["POST"]),
                Route("/v1/refunds", self._endpoint, methods=["POST"]),
                Route("/v1/refunds/{refund_id}", self._endpoint, methods=["GET"]),
                Route("/v1/accounts", self._endpoint, methods=["POST"]),
                Route("/v1/accounts/{account}", self._endpoint, methods=["GET"]),
                Route("/v1/account_links", self._endpoint, methods=["POST"]),
                Route("/v1/transfers", self._endpoint, methods=["GET", "POST"]),
                Route("/v1/transfers/{transfer}", self._endpoint, methods=["GET"]),
                Route("/v1/transfers/{transfer}/reversals", self._endpoint, methods=["POST"]),
            ]
        )

    async def _endpoint(self, request: Request) -> Response:
        params = parse_form(await request.body()) if request.method == "POST" else {}
        self.requests.append((request.method, request.url.path, params))
        if self._outage is not None and self._outage.remaining > 0:
            self._outage.remaining -= 1
            if self._outage.hang:
                await asyncio.sleep(HANG_SECONDS)
            return JSONResponse(
                {"error": {"type": "api_error", "message": "An unknown error occurred"}},
                status_code=self._outage.status,
            )
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key not in (SECRET_KEY, PUBLISHABLE_KEY):
            return JSONResponse(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Invalid API Key provided: {key[:8]}***",
                    }
                },
                status_code=401,
            )
        idempotency_key = request.headers.get("idempotency-key")
        if request.method == "POST" and idempotency_key in self.keys_in_flight:
            return JSONResponse(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "idempotency_key_in_use",
                        "message": "There is currently another in-progress request using this "
                        "Idempotent Key (probably because of a timeout). Please retry this "
                        "request later.",
                    }
                },
                status_code=409,
            )
        if request.method == "POST" and idempotency_key:
            kept = self.replies.get(idempotency_key)
            if kept is not None:
                path, sent, status, body = kept
                if (path, sent) != (request.url.path, params):
                    return JSONResponse(
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with "
                                "the same parameters they were first used with.",
                            }
                        },
                        status_code=400,
                    )
                return JSONResponse(
                    body, status_code=status, headers={"Idempotent-Replayed": "true"}
                )
        if request.method == "POST" and idempotency_key:
            self.keys_in_flight.add(idempotency_key)
        try:
            return await self._answer(request, params, key, idempotency_key)
        finally:
            self.keys_in_flight.discard(idempotency_key or "")

    async def _answer(
        self, request: Request, params: dict[str, Any], key: str, idempotency_key: str | None
    ) -> Response:
        try:
            status, body = 200, self._route(request, params, publishable=key == PUBLISHABLE_KEY)
        except StripeError as error:
            status, body = error.status, error.body
        body = json.loads(json.dumps(body))  # a snapshot: later changes are not the answer's
        if request.method == "POST" and idempotency_key and status < 500:
            self.replies[idempotency_key] = (request.url.path, params, status, body)
        if self.before_events is not None:
            await self.before_events(request.method, request.url.path)
        await self._deliver()
        if self.before_answer is not None:
            await self.before_answer(request.method, request.url.path)
        return JSONResponse(body, status_code=status)

    def _route(self, request: Request, params: dict[str, Any], *, publishable: bool) -> Any:
        path = request.url.path
        if path.startswith(("/v1/accounts", "/v1/account_links", "/v1/transfers")):
            if publishable:
                raise StripeError(
                    403, "invalid_request_error",
                    "This API call cannot be made with a publishable API key.",
                )  # fmt: skip
            return self._connect(request, params)
        intent_id = request.path_params.get("id")
        action = request.path_params.get("action")
        if publishable:
            # A publishable key may only confirm (or read) an intent whose secret it shows.
            intent = self._find(intent_id) if intent_id else None
            if (
                intent is None
                or params.get("client_secret", request.query_params.get("client_secret"))
                != intent["client_secret"]
                or action not in (None, "confirm")
            ):
                raise StripeError(
                    403, "invalid_request_error",
                    "This API call cannot be made with a publishable API key.",
                )  # fmt: skip
        if path == "/v1/refunds":
            return self.refund(params)
        refund_id = request.path_params.get("refund_id")
        if refund_id is not None:
            if refund_id not in self.refunds:
                raise StripeError(
                    404, "invalid_request_error", f"No such refund: '{refund_id}'",
                    code="resource_missing", param="id",
                )  # fmt: skip
            return self.refunds[refund_id]
        if intent_id is None:
            return self._intent(params)
        if request.method == "GET":
            return self._find(intent_id)
        match action:
            case "confirm":
                return self.confirm(intent_id, params.get("payment_method", ""))
            case "capture":
                return self.capture(intent_id, params)
            case "cancel":
                return self.cancel(intent_id, params)
            case None:
                intent = self._find(intent_id)
                intent["metadata"].update(params.get("metadata", {}))
                return intent
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path}).")


async def confirm_in_browser(
    base_url: str, client_secret: str, card: str = "pm_card_visa"
) -> httpx.Response:
    """What Stripe.js does on the guest's page: confirms the intent named by its client
    secret, with the publishable key, paying with one of Stripe's test cards."""
    intent_id = client_secret.split("_secret_")[0]
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await http.post(
            f"/v1/payment_intents/{intent_id}/confirm",
            data={"payment_method": card, "client_secret": client_secret},
            headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
        )
