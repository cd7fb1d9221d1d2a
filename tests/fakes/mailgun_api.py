"""A local stand-in for Mailgun's Messages API, after Mailgun's documentation of it.

- ``POST /v3/{domain}/messages`` with Basic auth, user ``api`` and the API key as password;
  otherwise a 401 with the plain text ``Forbidden``. An unknown domain is a 404
  ``{"message": "Domain not found: ..."}``.
- Form fields (URL-encoded or multipart): ``from``, ``to``, ``subject`` required, and one of
  ``text``, ``html``; ``h:X-Header`` fields become headers. A missing field is a 400
  ``{"message": "'from' parameter is missing"}``.
- 200 ``{"id": "<...@domain>", "message": "Queued. Thank you."}``.

``faults.fail_next(503)`` makes the next call answer that status instead.
"""

import base64
import secrets
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.messaging import Faults

API_KEY = "key-roost-test-not-a-real-one"
DOMAIN = "mg.roost.example"


@dataclass
class FakeMailgun:
    api_key: str = API_KEY
    domain: str = DOMAIN
    faults: Faults = field(default_factory=Faults)
    sent: list[dict[str, str]] = field(default_factory=list)

    def to(self, address: str) -> list[dict[str, str]]:
        return [mail for mail in self.sent if address in mail["to"].split(",")]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v3/{domain}/messages", self.send, methods=["POST"])])

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"api:{self.api_key}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    async def send(self, request: Request) -> Response:
        if not self._authorized(request):
            return PlainTextResponse("Forbidden", status_code=401)
        domain = request.path_params["domain"]
        if domain != self.domain:
            return JSONResponse({"message": f"Domain not found: {domain}"}, status_code=404)
        fault = self.faults.next()
        if fault is not None:
            return JSONResponse({"message": "fault ordered by the test"}, status_code=fault)
        form = {key: str(value) for key, value in (await request.form()).multi_items()}
        for name in ("from", "to", "subject"):
            if not form.get(name):
                return JSONResponse({"message": f"'{name}' parameter is missing"}, 400)
        if not any(form.get(part) for part in ("text", "html", "amp-html", "template")):
            return JSONResponse(
                {"message": "Need at least one of 'text', 'html', 'amp-html' or 'template'"}, 400
            )
        self.sent.append(form)
        return JSONResponse(
            {"id": f"<{secrets.token_hex(8)}@{self.domain}>", "message": "Queued. Thank you."}
        )
