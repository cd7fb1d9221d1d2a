"""M-Pesa through Safaricom's Daraja API (M-Pesa Express, the "STK push"), over httpx.

Roost asks M-Pesa to prompt the guest's phone for their PIN (``POST
/mpesa/stkpush/v1/processrequest``); the guest approves there, and M-Pesa takes the money at
once and posts the result to our CallBackURL (``POST /webhooks/mpesa/{secret}``). When that
callback is lost, the worker asks (``POST /mpesa/stkpushquery/v1/query``). The payment's one
reference is the push's CheckoutRequestID.

Refunds are B2C payments (``POST /mpesa/b2c/v3/paymentrequest``, CommandID BusinessPayment)
from MPESA_B2C_SHORTCODE to the number that paid, when an API initiator is configured
(MPESA_INITIATOR_NAME, MPESA_SECURITY_CREDENTIAL); declined, for a person to make, otherwise.
Daraja answers at once only that it took the request: the refund stays pending
(``PaymentPending``) until its result is posted to our ResultURL
(``/webhooks/mpesa/{secret}/b2c/result``). Our idempotency key is the request's
OriginatorConversationID, which Daraja keeps unique "to avoid double disbursement": a repeat
is refused as a duplicate, and read as the same refund, still pending. When a result is lost,
the worker's ``look_up_refund`` asks with a Transaction Status query, itself answered on a
callback (``/b2c/status``). B2C rather than the Reversal API: a reversal gives back a whole
transaction by its receipt, while refunds here are often part of a payment, and one path
serves both.

What Daraja cannot do: hold money for later (a request to book is never offered M-Pesa) or
charge more. Those are declined with a message saying so.

Amounts: Daraja takes whole shillings. KES has two decimals in ISO 4217, so an amount with
cents cannot be charged: it is declined, never rounded.
"""

import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx

from gateways.payments import (
    CaptureMethod,
    PaymentDeclined,
    PaymentIntent,
    PaymentPending,
    ProviderReport,
    ProviderUnavailable,
    Reported,
)
from gateways.tokens import CachedToken

log = logging.getLogger(__name__)

SANDBOX_API_BASE = "https://sandbox.safaricom.co.ke"
LIVE_API_BASE = "https://api.safaricom.co.ke"
CURRENCY = "KES"
CENTS = 100  # KES minor units in a shilling (ISO 4217: two decimals)
NAIROBI = ZoneInfo("Africa/Nairobi")
# The query's answer while the guest has not answered the prompt yet: an error body, not a
# result (HTTP 500, errorCode 500.001.1001 "The transaction is being processed").
STILL_PROCESSING = "500.001.1001"
INVALID_TOKEN = "404.001.03"  # noqa: S105 (an error code, not a secret)
# ResultCodes of the query and the callback.
PAID = 0
CANCELLED_BY_USER = 1032
UNDER_PROCESSING = 4999  # some query answers say "still under processing" this way
# Daraja's limits on the texts the guest sees in the prompt.
MAX_ACCOUNT_REFERENCE = 12
MAX_TRANSACTION_DESC = 13
# B2C: Daraja's refusal of a second request with an OriginatorConversationID it has seen
# (errorCode 500.002.1001, "Duplicate OriginatorConversationID.").
DUPLICATE_REQUEST = "duplicate originatorconversationid"
REFUND_REMARKS = "Roost refund"  # 2 to 100 characters
MAX_OCCASION = 100
# A Transaction Status query's word for a transaction M-Pesa finished.
COMPLETED = "Completed"


def supports(currency: str) -> bool:
    """M-Pesa takes Kenyan shillings only."""
    return currency.upper() == CURRENCY


def to_shillings(amount_minor: int, currency: str) -> int:
    """Whole shillings for Daraja's ``Amount``; PaymentDeclined when it cannot be charged."""
    if not supports(currency):
        raise PaymentDeclined(f"M-Pesa takes payments in KES only, not {currency.upper()}.")
    shillings, cents = divmod(amount_minor, CENTS)
    if cents:
        raise PaymentDeclined("M-Pesa takes whole shillings only; this amount has cents.")
    if shillings < 1:
        raise PaymentDeclined("M-Pesa takes at least 1 shilling.")
    return shillings


def password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Daraja's ``Password``: base64 of the shortcode, the passkey and the timestamp."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def timestamp(now: datetime) -> str:
    """Daraja's ``Timestamp``, YYYYMMDDHHmmss in Nairobi's time."""
    return now.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def _result_code(value: object) -> int | None:
    """A ResultCode, which Daraja writes as a number in callbacks and a string in queries."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True)
class StkResult:
    """What an STK callback says (``Body.stkCallback``)."""

    checkout_request_id: str
    merchant_request_id: str
    result_code: int
    result_desc: str
    amount_minor: int | None  # given when paid
    receipt: str | None  # the MpesaReceiptNumber, when paid

    @property
    def event_id(self) -> str:
        """One per push and outcome: a repeated delivery of it has the same."""
        return f"{self.checkout_request_id}:{self.result_code}"

    def report(self) -> ProviderReport:
        if self.result_code == PAID:
            return ProviderReport(
                Reported.CAPTURED,
                self.amount_minor,
                CURRENCY,
                reference=self.receipt or self.checkout_request_id,
            )
        return ProviderReport(Reported.FAILED, None, CURRENCY, reason=self.result_desc)


def stk_callback(body: object) -> StkResult | None:
    """The result a callback body holds; None when it is not one (missing fields, a paid
    result without its amount, an amount that is not whole cents)."""
    if not isinstance(body, Mapping):
        return None
    outer = body.get("Body")
    callback = outer.get("stkCallback") if isinstance(outer, Mapping) else None
    if not isinstance(callback, Mapping):
        return None
    checkout_id = callback.get("CheckoutRequestID")
    merchant_id = callback.get("MerchantRequestID")
    code = _result_code(callback.get("ResultCode"))
    desc = callback.get("ResultDesc")
    if not (isinstance(checkout_id, str) and checkout_id and 0 < len(checkout_id) <= 100):
        return None
    if code is None or not isinstance(merchant_id, str) or not isinstance(desc, str):
        return None
    items: dict[str, Any] = {}
    metadata = callback.get("CallbackMetadata")
    listed = metadata.get("Item") if isinstance(metadata, Mapping) else None
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("Name"), str):
            items[item["Name"]] = item.get("Value")
    amount_minor = None
    receipt = items.get("MpesaReceiptNumber")
    if code == PAID:
        amount = items.get("Amount")
        if isinstance(amount, bool) or not isinstance(amount, int | float | str):
            return None
        try:
            cents = Decimal(str(amount)) * CENTS
        except InvalidOperation:
            return None
        if not cents.is_finite() or cents != cents.to_integral_value():
            return None
        amount_minor = int(cents)
    return StkResult(
        checkout_request_id=checkout_id,
        merchant_request_id=merchant_id,
        result_code=code,
        result_desc=desc[:500],
        amount_minor=amount_minor,
        receipt=str(receipt)[:64] if receipt is not None else None,
    )


def _parameters(listed: object) -> dict[str, Any]:
    """A ``ResultParameters`` object's ``ResultParameter`` list (or one of them) as a dict."""
    found = listed.get("ResultParameter") if isinstance(listed, Mapping) else None
    items = [found] if isinstance(found, Mapping) else found if isinstance(found, list) else []
    return {
        item["Key"]: item.get("Value")
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("Key"), str)
    }


def _minor(shillings: object) -> int | None:
    """Roost's minor units for an amount Daraja writes in shillings (a number or a string)."""
    if isinstance(shillings, bool) or not isinstance(shillings, int | float | str):
        return None
    try:
        cents = Decimal(str(shillings)) * CENTS
    except InvalidOperation:
        return None
    if not cents.is_finite() or cents != cents.to_integral_value() or cents <= 0:
        return None
    return int(cents)


def _text(value: object, limit: int = 100) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text[:limit] if text else None


class RefundOutcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    WAITING = "WAITING"  # the request timed out in Daraja's queue, or the query was not decisive


@dataclass(frozen=True)
class B2cResult:
    """What Daraja posts about a B2C refund: its result, its queue timeout, or the answer to a
    Transaction Status query about it. ``originator_conversation_id`` is the refund request's
    (our idempotency key); ``event_id`` names the post (a redelivery has the same)."""

    event_id: str
    outcome: RefundOutcome
    originator_conversation_id: str | None
    conversation_id: str | None
    result_code: str
    result_desc: str
    amount_minor: int | None  # when it succeeded
    transaction_id: str | None  # M-Pesa's receipt for the payment to the guest


def _result(body: object) -> Mapping[str, Any] | None:
    result = body.get("Result") if isinstance(body, Mapping) else None
    return result if isinstance(result, Mapping) else None


def b2c_result(body: object) -> B2cResult | None:
    """A B2C request's result (``{"Result": {...}}`` posted to its ResultURL); None when the
    body is not one (no ids, no ResultCode, a success without its amount)."""
    result = _result(body)
    if result is None:
        return None
    originator = _text(result.get("OriginatorConversationID"))
    conversation = _text(result.get("ConversationID"))
    code = _text(result.get("ResultCode"), 20)  # a number, or a string (SFC_IC0003)
    desc = result.get("ResultDesc")
    if not (originator and conversation) or code is None or not isinstance(desc, str):
        return None
    parameters = _parameters(result.get("ResultParameters"))
    succeeded = code == "0"
    amount = _minor(parameters.get("TransactionAmount")) if succeeded else None
    if succeeded and amount is None:
        return None
    receipt = _text(parameters.get("TransactionReceipt"), 64) or _text(
        result.get("TransactionID"), 64
    )
    return B2cResult(
        # A post saying otherwise (another amount, say) is another post, not a redelivery.
        event_id=f"b2c-result:{conversation}:{code}:{amount}",
        outcome=RefundOutcome.SUCCEEDED if succeeded else RefundOutcome.FAILED,
        originator_conversation_id=originator,
        conversation_id=conversation,
        result_code=code,
        result_desc=desc[:500],
        amount_minor=amount,
        transaction_id=receipt,
    )


def b2c_timeout(body: object) -> B2cResult | None:
    """What Daraja posts to a request's QueueTimeOutURL: it was not processed in time. Its
    shape is the result's, without what only a processed request has."""
    result = _result(body)
    if result is None:
        return None
    originator = _text(result.get("OriginatorConversationID"))
    conversation = _text(result.get("ConversationID"))
    if not (originator or conversation):
        return None
    return B2cResult(
        event_id=f"timeout:{conversation or originator}",
        outcome=RefundOutcome.WAITING,
        originator_conversation_id=originator,
        conversation_id=conversation,
        result_code=_text(result.get("ResultCode"), 20) or "",
        result_desc=str(result.get("ResultDesc") or "")[:500],
        amount_minor=None,
        transaction_id=None,
    )


def status_result(body: object) -> B2cResult | None:
    """The answer to a Transaction Status query, posted to its ResultURL: the transaction it
    is about is named in ``ResultParameters`` (``OriginatorConversationID``,
    ``ConversationID``, ``ReceiptNo``, ``Amount``, ``TransactionStatus``). Only a completed
    transaction decides anything: a query that failed, or found it elsewhere than done, leaves
    the refund waiting for its result."""
    result = _result(body)
    if result is None:
        return None
    query = _text(result.get("ConversationID"))
    code = _text(result.get("ResultCode"), 20)
    desc = result.get("ResultDesc")
    if not query or code is None or not isinstance(desc, str):
        return None
    parameters = _parameters(result.get("ResultParameters"))
    originator = _text(parameters.get("OriginatorConversationID"))
    status = _text(parameters.get("TransactionStatus"), 50)
    amount = _minor(parameters.get("Amount"))
    done = code == "0" and status == COMPLETED and amount is not None
    return B2cResult(
        event_id=f"status:{query}",
        outcome=RefundOutcome.SUCCEEDED if done else RefundOutcome.WAITING,
        originator_conversation_id=originator,
        conversation_id=_text(parameters.get("ConversationID")),
        result_code=code,
        result_desc=f"{desc[:400]} ({status or 'no status'})",
        amount_minor=amount if done else None,
        transaction_id=_text(parameters.get("ReceiptNo"), 64),
    )


@dataclass(frozen=True)
class Initiator:
    """The M-Pesa org portal's API user that B2C payments and status queries are made as:
    its name, and its password encrypted with M-Pesa's public key (``SecurityCredential``,
    as the portal gives it; a secret)."""

    name: str
    security_credential: str
    shortcode: str  # the B2C (or "one account") shortcode the money is paid from

    def __repr__(self) -> str:
        return f"Initiator(name={self.name!r}, shortcode={self.shortcode!r})"


class MpesaGateway:
    """A ``PaymentGateway`` over Daraja's M-Pesa Express; ``reference`` is the push's
    CheckoutRequestID. ``create`` needs the number to prompt as ``metadata["phone_number"]``
    (2547XXXXXXXX); ``refund`` pays ``payer`` (that number) with a B2C payment, given an
    ``initiator``."""

    provider = "MPESA"
    # The guest approves on their phone and the money is taken then: nothing can be held,
    # and a push has no idempotency key (services/checkout.py never pushes a payment twice).
    prompts_the_payer = True
    # A refund is a payment of its own to the guest's number.
    refunds_to_payer = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        consumer_key: str,
        consumer_secret: str,
        shortcode: str,
        passkey: str,
        callback_url: str,
        initiator: Initiator | None = None,
        api_base: str = SANDBOX_API_BASE,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self._credentials = (consumer_key, consumer_secret)
        self._shortcode = shortcode
        self._passkey = passkey
        self._callback_url = callback_url.rstrip("/")
        self._initiator = initiator
        self._api_base = api_base.rstrip("/")
        self._now = now
        self._token = CachedToken(
            lambda: self._http.get(
                f"{self._api_base}/oauth/v1/generate",
                params={"grant_type": "client_credentials"},
                auth=self._credentials,
            ),
            provider="M-Pesa",
            clock=clock,
        )

    def __repr__(self) -> str:  # never the secrets, wherever a gateway is printed
        return f"MpesaGateway(shortcode={self._shortcode!r}, api_base={self._api_base!r})"

    supports = staticmethod(supports)

    # The token.

    async def _access_token(self, *, stale: str | None = None) -> str:
        return await self._token.get(stale=stale)

    # One call.

    async def _post(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Daraja's status and JSON answer; ProviderUnavailable when none came."""
        token = await self._access_token()
        for attempt in range(2):
            try:
                response = await self._http.post(
                    f"{self._api_base}{path}",
                    json=dict(body),
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as error:
                raise ProviderUnavailable(f"M-Pesa did not answer: {error!r}") from None
            try:
                answer = response.json() if response.content else {}
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            refused_token = response.status_code == 401 or answer.get("errorCode") == INVALID_TOKEN
            if refused_token and attempt == 0:
                token = await self._access_token(stale=token)
                continue
            return response.status_code, answer
        raise ProviderUnavailable("M-Pesa refused a fresh token")  # pragma: no cover

    def _signed(self) -> dict[str, str]:
        stamp = timestamp(self._now())
        return {
            "BusinessShortCode": self._shortcode,
            "Password": password(self._shortcode, self._passkey, stamp),
            "Timestamp": stamp,
        }

    # The gateway.

    async def create(
        self,
        *,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
        capture: CaptureMethod = "automatic",
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """Prompts ``metadata["phone_number"]`` to pay; the answer comes on the callback. No
        client secret or redirect: the guest approves on their phone."""
        if capture != "automatic":
            raise PaymentDeclined("M-Pesa takes the money at once; it cannot hold it.")
        shillings = to_shillings(amount_minor, currency)
        phone = (metadata or {}).get("phone_number")
        if not phone:
            raise PaymentDeclined("M-Pesa needs the phone number to prompt.")
        booking = (metadata or {}).get("booking_id", "")
        status, answer = await self._post(
            "/mpesa/stkpush/v1/processrequest",
            {
                **self._signed(),
                "TransactionType": "CustomerPayBillOnline",
                "Amount": shillings,
                "PartyA": phone,
                "PartyB": self._shortcode,
                "PhoneNumber": phone,
                "CallBackURL": self._callback_url,
                "AccountReference": f"Roost{booking}"[:MAX_ACCOUNT_REFERENCE],
                "TransactionDesc": "Roost booking"[:MAX_TRANSACTION_DESC],
            },
        )
        _refuse_errors(status, answer, "the payment prompt")
        if str(answer.get("ResponseCode")) != "0" or not answer.get("CheckoutRequestID"):
            reason = answer.get("ResponseDescription") or "M-Pesa did not accept the prompt."
            raise PaymentDeclined(str(reason))
        return PaymentIntent(reference=str(answer["CheckoutRequestID"]))

    async def look_up(self, reference: str) -> ProviderReport:
        """Where a push stands: paid, refused or cancelled on the phone, or still waiting."""
        status, answer = await self._post(
            "/mpesa/stkpushquery/v1/query", {**self._signed(), "CheckoutRequestID": reference}
        )
        if answer.get("errorCode") == STILL_PROCESSING:
            return ProviderReport(Reported.WAITING, None, CURRENCY)
        _refuse_errors(status, answer, "the status query")
        code = _result_code(answer.get("ResultCode"))
        if code is None or code == UNDER_PROCESSING:
            return ProviderReport(Reported.WAITING, None, CURRENCY)
        if code == PAID:
            # The query names no amount or receipt: it is about our push, of our amount.
            return ProviderReport(Reported.CAPTURED, None, CURRENCY, reference=reference)
        reason = str(answer.get("ResultDesc") or f"M-Pesa ResultCode {code}")
        return ProviderReport(Reported.FAILED, None, CURRENCY, reason=reason)

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        raise PaymentDeclined("M-Pesa takes the money as the guest approves; nothing is held.")

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        # Nothing is held, and a prompt cannot be withdrawn: one left unanswered lapses on the
        # phone (ResultCode 1037) without taking anything.
        return reference

    def amount_step(self, currency: str) -> int:
        """Daraja moves whole shillings only."""
        return CENTS if supports(currency) else 1

    async def refund(
        self,
        reference: str,
        *,
        amount_minor: int,
        idempotency_key: str,
        payer: str | None = None,
    ) -> str:
        """Pays ``amount_minor`` back to ``payer`` with a B2C payment, under
        ``idempotency_key`` as its OriginatorConversationID; always ``PaymentPending`` (with
        that id) once Daraja took it: its result comes on the ResultURL."""
        if self._initiator is None:
            raise PaymentDeclined(
                "M-Pesa refunds need a B2C initiator (MPESA_INITIATOR_NAME and "
                "MPESA_SECURITY_CREDENTIAL); this one is left for a person to make."
            )
        shillings = to_shillings(amount_minor, CURRENCY)  # cents: declined, never rounded
        if not payer:
            raise PaymentDeclined(
                "Roost did not keep the number that paid; this refund is left for a person."
            )
        status, answer = await self._post(
            "/mpesa/b2c/v3/paymentrequest",
            {
                "OriginatorConversationID": idempotency_key,
                "InitiatorName": self._initiator.name,
                "SecurityCredential": self._initiator.security_credential,
                "CommandID": "BusinessPayment",
                "Amount": shillings,
                "PartyA": self._initiator.shortcode,
                "PartyB": payer,
                "Remarks": REFUND_REMARKS,
                "QueueTimeOutURL": f"{self._callback_url}/b2c/timeout",
                "ResultURL": f"{self._callback_url}/b2c/result",
                # Spelled as Daraja spells it; the push it refunds, for whoever reconciles.
                "Occassion": reference[:MAX_OCCASION] or REFUND_REMARKS,
            },
        )
        if DUPLICATE_REQUEST in str(answer.get("errorMessage", "")).lower():
            # Asked before (its answer lost): the same refund, whose result is still to come.
            raise PaymentPending(idempotency_key)
        _refuse_errors(status, answer, "the refund")
        if str(answer.get("ResponseCode")) != "0":
            reason = answer.get("ResponseDescription") or "M-Pesa did not accept the refund."
            raise PaymentDeclined(str(reason))
        raise PaymentPending(str(answer.get("OriginatorConversationID") or idempotency_key))

    async def look_up_refund(self, reference: str) -> str:
        """Asks where the B2C refund ``reference`` (its OriginatorConversationID) stands, with a
        Transaction Status query. Daraja answers that on a callback of its own (``/b2c/status``),
        which confirms the refund as its result would: here it is always still pending, and a
        query Daraja refuses is no word on the refund at all."""
        if self._initiator is None:
            raise PaymentPending(reference)
        status, answer = await self._post(
            "/mpesa/transactionstatus/v1/query",
            {
                "Initiator": self._initiator.name,
                "SecurityCredential": self._initiator.security_credential,
                "CommandID": "TransactionStatusQuery",
                "OriginalConversationID": reference,
                "PartyA": self._initiator.shortcode,
                "IdentifierType": "4",  # an organization's shortcode
                "ResultURL": f"{self._callback_url}/b2c/status",
                "QueueTimeOutURL": f"{self._callback_url}/b2c/timeout",
                "Remarks": REFUND_REMARKS,
                "Occasion": REFUND_REMARKS,
            },
        )
        try:
            _refuse_errors(status, answer, "the refund's status query")
        except PaymentDeclined as refused:
            log.warning("M-Pesa refund %s: status query refused: %s", reference, refused)
        raise PaymentPending(reference)

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        raise PaymentDeclined("M-Pesa cannot charge more to this payment; pay the difference anew.")


def _refuse_errors(status: int, answer: Mapping[str, Any], what: str) -> None:
    """Daraja's error bodies (``{"requestId", "errorCode", "errorMessage"}``): its own trouble,
    a rate limit or a refused token is unavailability; any other 4xx refuses the request."""
    if 200 <= status < 300 and "errorCode" not in answer:
        return
    message = str(answer.get("errorMessage") or f"M-Pesa answered {status}")
    if status >= 500 or status in (401, 403, 408, 429):
        raise ProviderUnavailable(f"M-Pesa answered {status} to {what}: {message}")
    log.info("M-Pesa refused %s: %s (%s)", what, message, answer.get("errorCode"))
    raise PaymentDeclined(message)


if TYPE_CHECKING:
    from gateways.payments import (
        CurrencyLimited,
        PaymentGateway,
        PaymentLookup,
        PromptsThePayer,
        RefundLookup,
        RefundsToPayer,
    )

    def _is_a_gateway(gateway: MpesaGateway) -> PaymentGateway:
        return gateway

    def _is_a_lookup(gateway: MpesaGateway) -> PaymentLookup:
        return gateway

    def _is_limited(gateway: MpesaGateway) -> CurrencyLimited:
        return gateway

    def _prompts(gateway: MpesaGateway) -> PromptsThePayer:
        return gateway

    def _looks_up_refunds(gateway: MpesaGateway) -> RefundLookup:
        return gateway

    def _refunds_to_payer(gateway: MpesaGateway) -> RefundsToPayer:
        return gateway
