"""A local stand-in for SendGrid's v3 Mail Send API, after SendGrid's documentation of it.

- ``POST /v3/mail/send`` with ``Authorization: Bearer <API key>``; a wrong or missing key is a
  401 with SendGrid's ``{"errors": [{"field", "message", "help"}]}``.
- The JSON body: ``personalizations`` (1 to 1000, each with a non-empty ``to`` of
  ``{"email", "name"?}``), ``from`` (``{"email", "name"?}``), ``subject`` (at the top or in each
  personalization), ``content`` (``{"type", "value"}``, text/plain first when both are given),
  ``headers`` (string values). Problems are 400s naming the field.
- 202 Accepted with an empty body and an ``X-Message-Id`` header when the mail is queued.

``faults.fail_next(503)`` makes the next call answer that status instead.
"""

import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.messaging import Faults

API_KEY = "SG.roost-test-key.not-a-real-one"


def _error(status: int, message: str, field_name: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "field": field_name, "help": None}]}, status_code=status
    )


def _address_problem(value: Any, where: str) -> JSONResponse | None:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        return _error(400, "The email parameter is required.", f"{where}.email")
    if "@" not in value["email"]:
        return _error(400, "Does not contain a valid address.", f"{where}.email")
    return None


@dataclass
class FakeSendGrid:
    api_key: str = API_KEY
    faults: Faults = field(default_factory=Faults)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def to(self, address: str) -> list[dict[str, Any]]:
        """The mails queued for ``address``."""
        return [
            mail
            for mail in self.sent
            for person in mail["personalizations"]
            if any(to["email"] == address for to in person["to"])
        ]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/mail/send", self.send, methods=["POST"])])

    async def send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        fault = self.faults.next()
        if fault is not None:
            return _error(fault, "fault ordered by the test")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Bad Request", None)
        problem = self._problem(body)
        if problem is not None:
            return problem
        self.sent.append(body)
        return Response(status_code=202, headers={"X-Message-Id": secrets.token_urlsafe(16)})

    def _problem(self, body: Any) -> JSONResponse | None:
        if not isinstance(body, dict):
            return _error(400, "Bad Request")
        people = body.get("personalizations")
        if not isinstance(people, list) or not people:
            return _error(400, "You must have at least one personalization.", "personalizations")
        if len(people) > 1000:
            return _error(400, "The personalization block is limited to 1000.", "personalizations")
        for index, person in enumerate(people):
            if not isinstance(person, dict) or not person.get("to"):
                return _error(400, "The to array is required.", f"personalizations.{index}.to")
            for to in person["to"]:
                if problem := _address_problem(to, f"personalizations.{index}.to"):
                    return problem
            if not body.get("subject") and not person.get("subject"):
                return _error(400, "The subject is required.", "subject")
        if problem := _address_problem(body.get("from"), "from"):
            return problem
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return _error(400, "Unless a valid template_id is provided, content is required.")
        for part in content:
            if not isinstance(part, dict) or not part.get("type") or not part.get("value"):
                return _error(400, "The content value must be a string at least one character.")
        types = [part["type"] for part in content]
        if "text/plain" in types and types[0] != "text/plain":
            return _error(400, "The text/plain content type must be first.", "content")
        headers = body.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            return _error(400, "Header values must be strings.", "headers")
        return None
