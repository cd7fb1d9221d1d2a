"""A local stand-in for Twilio's Programmable Messaging API, after Twilio's documentation of it.

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with Basic auth (account SID, auth
  token); the SID in the path must be the one signed in. Otherwise a 401
  ``{"code": 20003, "message": "Authenticate", "more_info", "status": 401}``.
- URL-encoded form: ``To`` (E.164), ``From`` (or ``MessagingServiceSid``), ``Body`` (at most
  1,600 characters). Problems are 400s with Twilio's codes: 21211 bad To, 21603 no From,
  21602 no Body, 21617 too long.
- 201 with the Message resource: ``sid`` (SM...), ``status`` ``queued``, ``to``, ``from``,
  ``body``, ``num_segments``, ``direction`` ``outbound-api``, ``api_version`` ``2010-04-01``.

``faults.fail_next(503)`` makes the next call answer that status instead.
"""

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.messaging import Faults

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "roost-twilio-test-token"
FROM = "+15005550006"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    faults: Faults = field(default_factory=Faults)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def to(self, number: str) -> list[dict[str, Any]]:
        return [message for message in self.sent if message["to"] == number]

    def app(self) -> Starlette:
        path = "/2010-04-01/Accounts/{sid}/Messages.json"
        return Starlette(routes=[Route(path, self.create, methods=["POST"])])

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (
            request.headers.get("authorization") == f"Basic {expected}"
            and request.path_params["sid"] == self.account_sid
        )

    async def create(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        fault = self.faults.next()
        if fault is not None:
            return _error(fault, 20500, "fault ordered by the test")
        form = await request.form()
        to, sender, body = (str(form.get(name, "")) for name in ("To", "From", "Body"))
        if not E164.fullmatch(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not form.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        message = {
            "sid": "SM" + secrets.token_hex(16),
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "num_segments": str(len(body) // 153 + 1),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
        }
        self.sent.append(message)
        return JSONResponse(message, status_code=201)
