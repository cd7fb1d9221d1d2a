"""Outgoing text messages: printed to the log in development, or sent through Twilio's REST API.

Failures are told apart as for email (gateways.email): ``ProviderUnavailable`` is worth another
try later, ``Undeliverable`` is not."""

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx

from gateways.email import ProviderUnavailable, Undeliverable, check_answer

log = logging.getLogger("roost.sms")

__all__ = ["ConsoleTexter", "ProviderUnavailable", "Sms", "Texter", "TwilioTexter", "Undeliverable"]


@dataclass(frozen=True)
class Sms:
    to: str  # E.164, like +351912345678
    body: str
    # A body that holds a secret (a verification code) is never written to a log.
    confidential: bool = False


class Texter(Protocol):
    async def send(self, sms: Sms) -> None: ...


def masked(number: str) -> str:
    """Enough of a number to tell messages apart in a log, not enough to call it."""
    return f"{number[:3]}…{number[-2:]}" if len(number) > 6 else "…"


class ConsoleTexter:
    """Development: the message goes to the log, the number shortened; a confidential one
    without its body."""

    async def send(self, sms: Sms) -> None:
        body = "(confidential: not logged)" if sms.confidential else sms.body
        log.info("sms", extra={"to": masked(sms.to), "body": body})


class TwilioTexter:
    """Twilio's Programmable Messaging: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with
    Basic auth (account SID, auth token) and the form fields To, From and Body; 201 when queued."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_base: str,
    ) -> None:
        self.http, self.sender = http, sender
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self.url = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"

    async def send(self, sms: Sms) -> None:
        form = {"To": sms.to, "From": self.sender, "Body": sms.body}
        try:
            response = await self.http.post(self.url, data=form, auth=self._auth)
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"Twilio unreachable: {type(error).__name__}") from None
        check_answer("Twilio", response)
