"""A local stand-in for Safaricom's Daraja API (M-Pesa Express), after its documentation.

- ``GET /oauth/v1/generate?grant_type=client_credentials``: the consumer key and secret in
  Basic auth; answers ``{"access_token", "expires_in": "3599"}`` (a string, as Daraja writes
  it). Every other call needs a live bearer token (404, errorCode ``404.001.03`` "Invalid
  Access Token", otherwise).
- ``POST /mpesa/stkpush/v1/processrequest``: the STK push. ``Password`` must be base64 of
  shortcode + passkey + ``Timestamp``, and the timestamp Nairobi's time now (give or take
  half an hour); ``Amount`` whole shillings; ``PartyA``/``PhoneNumber`` 2547XXXXXXXX or
  2541XXXXXXXX. Answers ``MerchantRequestID``, ``CheckoutRequestID``, ``ResponseCode "0"``.
- ``POST /mpesa/stkpushquery/v1/query``: where a push stands. Unanswered, the error Daraja
  gives (HTTP 500, errorCode ``500.001.1001`` "The transaction is being processed");
  answered, ``ResultCode`` and ``ResultDesc`` as strings.
- ``POST /mpesa/b2c/v3/paymentrequest``: a B2C payment from ``B2C_SHORTCODE`` (PartyA) to a
  number (PartyB), ``CommandID`` BusinessPayment (or SalaryPayment, PromotionPayment),
  ``Amount`` whole shillings, ``Remarks`` 2 to 100 characters, ``ResultURL`` and
  ``QueueTimeOutURL``. A second request with an ``OriginatorConversationID`` seen before is
  refused (errorCode ``500.002.1001`` "Duplicate OriginatorConversationID."). Answers
  ``ConversationID``, ``OriginatorConversationID``, ``ResponseCode "0"``. The initiator's name
  and ``SecurityCredential`` are checked as M-Pesa checks them, when it processes the payment:
  wrong, its result is ResultCode 2001 "The initiator information is invalid.".
- ``POST /mpesa/transactionstatus/v1/query``: asks about a transaction by its
  ``OriginalConversationID`` (or ``TransactionID``); answers only that the query was taken, and
  its result is posted to the query's ResultURL (``answer_status_queries``).
- Errors as Daraja writes them: ``{"requestId", "errorCode", "errorMessage"}``.

The customer's part, on their phone, is ``approve`` or ``cancel`` (ResultCode 1032); either
posts the callback to the push's CallBackURL through ``deliver_to`` (or does not: a lost
callback). M-Pesa's part of a B2C payment is ``pay_out`` (done, or refused with a ResultCode)
or ``time_out``; each posts to the request's ResultURL or QueueTimeOutURL through
``deliver_to`` (or does not: a lost result). ``failures`` makes the next calls answer those
HTTP statuses.
"""

import base64
import binascii
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONSUMER_KEY = "roost-daraja-consumer-key"
CONSUMER_SECRET = "roost-daraja-consumer-secret"
SHORTCODE = "600990"
PASSKEY = "roost-fake-passkey-4f1c0a9e7d3b2c18"
NAIROBI = ZoneInfo("Africa/Nairobi")
PHONE = "2547"
CANCELLED_BY_USER = 1032
B2C_SHORTCODE = "600997"
INITIATOR_NAME = "roost-api-initiator"
# What the org portal's "encrypt" gives for the initiator's password: base64 of RSA output.
SECURITY_CREDENTIAL = base64.b64encode(b"roost-fake-initiator-password-ciphertext" * 6).decode()
WRONG_INITIATOR = (2001, "The initiator information is invalid.")
B2C_COMMANDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")


def daraja_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"requestId": f"{secrets.randbelow(99999)}-{secrets.randbelow(9999999)}-1",
         "errorCode": code, "errorMessage": message},
        status_code=status,
    )  # fmt: skip


def _request_id() -> str:
    return f"{secrets.randbelow(9999)}-{secrets.randbelow(99999)}-1"


def bad_request(what: str) -> JSONResponse:
    return daraja_error(400, "400.002.02", f"Bad Request - Invalid {what}")


def msisdn(value: Any) -> bool:
    text = str(value)
    return len(text) == 12 and text.isdigit() and text[:4] in ("2547", "2541")


@dataclass
class FakeMpesa:
    deliver_to: httpx.AsyncClient | None = None
    token_seconds: int = 3599
    tokens: dict[str, datetime] = field(default_factory=dict)
    tokens_issued: int = 0
    # CheckoutRequestID -> the push: its request, and its result once the customer answered.
    pushes: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: int = 0
    failures: list[int | None] = field(default_factory=list)  # None: this call succeeds
    # Every callback posted: (url, status answered, body answered).
    delivered: list[tuple[str, int, Any]] = field(default_factory=list)
    # OriginatorConversationID -> the B2C payment: its request, and its result once processed.
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    b2c_requests: int = 0
    b2c_shortcode: str = B2C_SHORTCODE
    # The next B2C requests are taken, and their answers lost (a 504 in their stead).
    lose_answers: int = 0
    # Transaction Status queries not answered yet (their requests).
    status_queries: list[dict[str, Any]] = field(default_factory=list)

    # What a test does in the customer's stead.

    def only_push(self) -> tuple[str, dict[str, Any]]:
        [(checkout_id, push)] = self.pushes.items()
        return checkout_id, push

    async def approve(self, checkout_id: str, *, deliver: bool = True) -> dict[str, Any]:
        """The customer enters their PIN: the money is taken, the callback posted."""
        push = self.pushes[checkout_id]
        assert push["result"] is None, "answered already"
        request = push["request"]
        paid_at = datetime.now(NAIROBI)
        push["result"] = (0, "The service request is processed successfully.")
        push["metadata"] = [
            {"Name": "Amount", "Value": int(request["Amount"])},
            {"Name": "MpesaReceiptNumber", "Value": self._receipt()},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": int(paid_at.strftime("%Y%m%d%H%M%S"))},
            {"Name": "PhoneNumber", "Value": int(request["PhoneNumber"])},
        ]
        if deliver:
            await self.deliver(checkout_id)
        return self.callback(checkout_id)

    async def cancel(
        self,
        checkout_id: str,
        *,
        deliver: bool = True,
        result: tuple[int, str] = (CANCELLED_BY_USER, "Request cancelled by user"),
    ) -> dict[str, Any]:
        """The customer dismisses the prompt (or M-Pesa refuses it: ``result``)."""
        push = self.pushes[checkout_id]
        assert push["result"] is None, "answered already"
        push["result"] = result
        if deliver:
            await self.deliver(checkout_id)
        return self.callback(checkout_id)

    def callback(self, checkout_id: str) -> dict[str, Any]:
        """The body Daraja posts to the CallBackURL once the customer answered."""
        push = self.pushes[checkout_id]
        code, desc = push["result"]
        result: dict[str, Any] = {
            "MerchantRequestID": push["merchant_request_id"],
            "CheckoutRequestID": checkout_id,
            "ResultCode": code,
            "ResultDesc": desc,
        }
        if code == 0:
            result["CallbackMetadata"] = {"Item": push["metadata"]}
        return {"Body": {"stkCallback": result}}

    async def deliver(self, checkout_id: str) -> httpx.Response:
        """Posts the push's callback (again, for a redelivery)."""
        assert self.deliver_to is not None, "no way to reach the CallBackURL"
        url = self.pushes[checkout_id]["request"]["CallBackURL"]
        response = await self.deliver_to.post(url, json=self.callback(checkout_id))
        self.delivered.append((url, response.status_code, response.json()))
        return response

    # M-Pesa's part of a B2C payment.

    def only_payout(self) -> tuple[str, dict[str, Any]]:
        [(originator_id, payout)] = self.payouts.items()
        return originator_id, payout

    async def pay_out(
        self,
        originator_id: str,
        *,
        deliver: bool = True,
        refused: tuple[int | str, str] | None = None,
    ) -> dict[str, Any]:
        """M-Pesa processes the payment: paid to the number, or ``refused`` with that
        ResultCode (and refused as 2001 whatever the test says, when the initiator's
        credentials were wrong); the result posted to the ResultURL."""
        payout = self.payouts[originator_id]
        assert payout["result"] is None, "processed already"
        if not payout["initiator_valid"]:
            refused = WRONG_INITIATOR
        payout["transaction_id"] = self._receipt()
        if refused is None:
            payout["result"] = (0, "The service request is processed successfully.")
            payout["completed_at"] = datetime.now(NAIROBI)
        else:
            payout["result"] = refused
        if deliver:
            await self.deliver_payout(originator_id)
        return self.payout_result(originator_id)

    def payout_result(self, originator_id: str) -> dict[str, Any]:
        """The body M-Pesa posts to the ResultURL once it processed the payment."""
        payout = self.payouts[originator_id]
        code, desc = payout["result"]
        result: dict[str, Any] = {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": desc,
            "OriginatorConversationID": originator_id,
            "ConversationID": payout["conversation_id"],
            "TransactionID": payout["transaction_id"],
            "ReferenceData": {
                "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": payout["request"][
                    "QueueTimeOutURL"]}
            },
        }  # fmt: skip
        if code == 0:
            request = payout["request"]
            completed = payout["completed_at"].strftime("%d.%m.%Y %H:%M:%S")
            result["ResultParameters"] = {
                "ResultParameter": [
                    {"Key": "TransactionAmount", "Value": int(request["Amount"])},
                    {"Key": "TransactionReceipt", "Value": payout["transaction_id"]},
                    {"Key": "ReceiverPartyPublicName", "Value": f"{request['PartyB']} - J DOE"},
                    {"Key": "TransactionCompletedDateTime", "Value": completed},
                    {"Key": "B2CUtilityAccountAvailableFunds", "Value": 8959269.60},
                    {"Key": "B2CWorkingAccountAvailableFunds", "Value": 1199371.00},
                    {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                    {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1980.00},
                ]
            }
        return {"Result": result}

    async def deliver_payout(self, originator_id: str) -> httpx.Response:
        """Posts the payment's result (again, for a redelivery)."""
        url = self.payouts[originator_id]["request"]["ResultURL"]
        return await self._post(url, self.payout_result(originator_id))

    async def time_out(self, originator_id: str) -> httpx.Response:
        """The request waited too long in M-Pesa's queue: posted to its QueueTimeOutURL."""
        payout = self.payouts[originator_id]
        body = {
            "Result": {
                "ResultType": 1,
                "ResultCode": "SVC0001",
                "ResultDesc": "The request timed out while awaiting processing.",
                "OriginatorConversationID": originator_id,
                "ConversationID": payout["conversation_id"],
            }
        }
        return await self._post(payout["request"]["QueueTimeOutURL"], body)

    async def answer_status_queries(self) -> list[httpx.Response]:
        """M-Pesa answers the Transaction Status queries asked so far, each at its ResultURL:
        a payment processed and paid is "Completed"; one not processed yet, or unknown, is
        no transaction found."""
        answered = []
        while self.status_queries:
            query = self.status_queries.pop(0)
            payout = self.payouts.get(str(query.get("OriginalConversationID")))
            result: dict[str, Any] = {
                "ConversationID": f"AG_{datetime.now(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}",
                "OriginatorConversationID": _request_id(),
                "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
                "ResultType": 0,
            }  # fmt: skip
            if payout is None or payout["result"] is None:
                result["ResultCode"] = "R000001"
                result["ResultDesc"] = "The transaction is not found."
            else:
                code, _ = payout["result"]
                result["ResultCode"] = 0
                result["ResultDesc"] = "The service request is processed successfully."
                result["TransactionID"] = payout["transaction_id"]
                result["ResultParameters"] = {
                    "ResultParameter": [
                        {"Key": "DebitPartyName", "Value": f"{self.b2c_shortcode} - Roost"},
                        {"Key": "CreditPartyName", "Value": f"{payout['request']['PartyB']}"},
                        {"Key": "OriginatorConversationID",
                         "Value": query["OriginalConversationID"]},
                        {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
                        {"Key": "TransactionStatus",
                         "Value": "Completed" if code == 0 else "Declined"},
                        {"Key": "Amount", "Value": str(payout["request"]["Amount"])},
                        {"Key": "ConversationID", "Value": payout["conversation_id"]},
                        {"Key": "ReceiptNo", "Value": payout["transaction_id"]},
                    ]
                }  # fmt: skip
            answered.append(await self._post(query["ResultURL"], {"Result": result}))
        return answered

    async def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        assert self.deliver_to is not None, "no way to reach our URLs"
        response = await self.deliver_to.post(url, json=body)
        self.delivered.append((url, response.status_code, response.json()))
        return response

    @staticmethod
    def _receipt() -> str:
        alphabet = string.ascii_uppercase + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(10))

    # The API.

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/v1/generate", self.token, methods=["GET"]),
                Route("/mpesa/stkpush/v1/processrequest", self.push, methods=["POST"]),
                Route("/mpesa/stkpushquery/v1/query", self.query, methods=["POST"]),
                Route("/mpesa/b2c/v3/paymentrequest", self.b2c, methods=["POST"]),
                Route("/mpesa/transactionstatus/v1/query", self.status_query, methods=["POST"]),
            ]
        )

    def _failure(self) -> Response | None:
        status = self.failures.pop(0) if self.failures else None
        if status is None:
            return None
        if status < 500:
            return daraja_error(status, "400.002.02", "Bad Request - Invalid PhoneNumber")
        return daraja_error(status, "500.003.02", "System is busy. Please try again later.")

    async def token(self, request: Request) -> Response:
        if failed := self._failure():
            return failed
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            given = ""
        if scheme != "Basic" or given != f"{CONSUMER_KEY}:{CONSUMER_SECRET}":
            return daraja_error(400, "400.008.01", "Invalid Authentication passed")
        if request.query_params.get("grant_type") != "client_credentials":
            return daraja_error(400, "400.008.02", "Invalid grant type passed")
        token = secrets.token_urlsafe(21)
        self.tokens[token] = datetime.now(UTC) + timedelta(seconds=self.token_seconds)
        self.tokens_issued += 1
        return JSONResponse({"access_token": token, "expires_in": str(self.token_seconds)})

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token)
        return scheme == "Bearer" and expires is not None and datetime.now(UTC) < expires

    @staticmethod
    def _signed(body: dict[str, Any]) -> Response | None:
        """The shortcode, the timestamp and the password made from them and the passkey."""
        if str(body.get("BusinessShortCode")) != SHORTCODE:
            return bad_request("BusinessShortCode")
        stamp = str(body.get("Timestamp", ""))
        try:
            at = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
        except ValueError:
            return bad_request("Timestamp")
        if abs(at - datetime.now(NAIROBI)) > timedelta(minutes=30):
            return bad_request("Timestamp")
        expected = base64.b64encode(f"{SHORTCODE}{PASSKEY}{stamp}".encode()).decode()
        if body.get("Password") != expected:
            return daraja_error(400, "400.002.02", "Bad Request - Invalid Password")
        return None

    async def _body(self, request: Request, *, signed: bool = True) -> dict[str, Any] | Response:
        if failed := self._failure():
            return failed
        if not self._authorized(request):
            return daraja_error(404, "404.001.03", "Invalid Access Token")
        try:
            body = await request.json()
        except ValueError:
            return daraja_error(400, "400.002.05", "Invalid Request Payload")
        if not isinstance(body, dict):
            return daraja_error(400, "400.002.05", "Invalid Request Payload")
        return (self._signed(body) if signed else None) or body

    async def push(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if body.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
            return bad_request("TransactionType")
        amount = body.get("Amount")
        if isinstance(amount, bool) or not (
            (isinstance(amount, int) and amount >= 1)
            or (isinstance(amount, str) and amount.isdigit() and int(amount) >= 1)
        ):
            return bad_request("Amount")
        if not msisdn(body.get("PartyA")) or not msisdn(body.get("PhoneNumber")):
            return bad_request("PhoneNumber")
        if str(body.get("PartyB")) != SHORTCODE:
            return bad_request("PartyB")
        url = body.get("CallBackURL")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return bad_request("CallBackURL")
        reference = body.get("AccountReference")
        if not isinstance(reference, str) or not 0 < len(reference) <= 12:
            return bad_request("AccountReference")
        description = body.get("TransactionDesc")
        if not isinstance(description, str) or not 0 < len(description) <= 13:
            return bad_request("TransactionDesc")
        merchant_id = f"{secrets.randbelow(99999)}-{secrets.randbelow(99999999)}-1"
        checkout_id = f"ws_CO_{datetime.now(NAIROBI):%d%m%Y%H%M%S}{secrets.token_hex(6)}"
        self.pushes[checkout_id] = {
            "request": body,
            "merchant_request_id": merchant_id,
            "result": None,
        }
        accepted = "Success. Request accepted for processing"
        return JSONResponse(
            {
                "MerchantRequestID": merchant_id,
                "CheckoutRequestID": checkout_id,
                "ResponseCode": "0",
                "ResponseDescription": accepted,
                "CustomerMessage": accepted,
            }
        )

    async def query(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        self.queries += 1
        push = self.pushes.get(str(body.get("CheckoutRequestID")))
        if push is None:
            return bad_request("CheckoutRequestID")
        if push["result"] is None:
            return daraja_error(500, "500.001.1001", "The transaction is being processed")
        code, desc = push["result"]
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push["merchant_request_id"],
                "CheckoutRequestID": body["CheckoutRequestID"],
                "ResultCode": str(code),
                "ResultDesc": desc,
            }
        )

    async def b2c(self, request: Request) -> Response:
        body = await self._body(request, signed=False)
        if isinstance(body, Response):
            return body
        self.b2c_requests += 1
        originator_id = body.get("OriginatorConversationID")
        if not isinstance(originator_id, str) or not originator_id:
            return bad_request("OriginatorConversationID")
        if originator_id in self.payouts:
            return daraja_error(500, "500.002.1001", "Duplicate OriginatorConversationID.")
        if body.get("CommandID") not in B2C_COMMANDS:
            return bad_request("CommandID")
        amount = body.get("Amount")
        if isinstance(amount, bool) or not (
            (isinstance(amount, int) and amount >= 1)
            or (isinstance(amount, str) and amount.isdigit() and int(amount) >= 1)
        ):
            return bad_request("Amount")
        if str(body.get("PartyA")) != self.b2c_shortcode:
            return bad_request("PartyA")
        if not msisdn(body.get("PartyB")):
            return bad_request("PartyB")
        remarks = body.get("Remarks")
        if not isinstance(remarks, str) or not 2 <= len(remarks) <= 100:
            return bad_request("Remarks")
        for name in ("QueueTimeOutURL", "ResultURL"):
            url = body.get(name)
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                return bad_request(name)
        occasion = body.get("Occassion", "")
        if not isinstance(occasion, str) or len(occasion) > 100:
            return bad_request("Occassion")
        if not isinstance(body.get("InitiatorName"), str) or not body.get("SecurityCredential"):
            return bad_request("Initiator")
        conversation_id = f"AG_{datetime.now(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"
        self.payouts[originator_id] = {
            "request": body,
            "conversation_id": conversation_id,
            "initiator_valid": body["InitiatorName"] == INITIATOR_NAME
            and body["SecurityCredential"] == SECURITY_CREDENTIAL,
            "result": None,
        }
        if self.lose_answers:
            self.lose_answers -= 1
            return daraja_error(504, "504.001.01", "Gateway Timeout")
        return JSONResponse(
            {
                "ConversationID": conversation_id,
                "OriginatorConversationID": originator_id,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    async def status_query(self, request: Request) -> Response:
        body = await self._body(request, signed=False)
        if isinstance(body, Response):
            return body
        if (body.get("Initiator"), body.get("SecurityCredential")) != (
            INITIATOR_NAME, SECURITY_CREDENTIAL
        ):  # fmt: skip
            return daraja_error(400, "400.002.02", "Bad Request - Invalid Initiator")
        if body.get("CommandID") != "TransactionStatusQuery":
            return bad_request("CommandID")
        if str(body.get("PartyA")) != self.b2c_shortcode or str(body.get("IdentifierType")) != "4":
            return bad_request("PartyA")
        if not (body.get("OriginalConversationID") or body.get("TransactionID")):
            return bad_request("TransactionID")
        for name in ("QueueTimeOutURL", "ResultURL"):
            url = body.get(name)
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                return bad_request(name)
        self.status_queries.append(body)
        return JSONResponse(
            {
                "OriginatorConversationID": _request_id(),
                "ConversationID": f"AG_{datetime.now(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}",
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )  # fmt: skip
