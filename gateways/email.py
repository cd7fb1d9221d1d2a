"""Outgoing email: printed to the log in development, written to files, or sent over SMTP or
the HTTP APIs of SendGrid and Mailgun.

A provider that is down or slow raises ``ProviderUnavailable`` (or the transport's own error):
the outbox worker tries again later. One that refuses the message itself (a bad address, a
rejected key) raises ``Undeliverable``: sending it again would be refused again."""

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

import httpx

log = logging.getLogger("roost.email")


class ProviderUnavailable(Exception):
    """The provider could not take the message now (5xx, 429, a timeout): worth retrying."""


class Undeliverable(Exception):
    """The provider refused this message for good (4xx): retrying would not change its answer."""


def check_answer(provider: str, response: httpx.Response) -> None:
    """Raises for a refused call; the provider's words are kept, never the request's secrets."""
    if response.is_success:
        return
    detail = f"{provider} answered {response.status_code}: {response.text[:300]}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise ProviderUnavailable(detail)
    raise Undeliverable(detail)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    # Stable for one piece of news, so a receiver can drop a copy sent twice.
    message_id: str | None = None
    # The same content as ``text``, as HTML; sent beside it as an alternative when given.
    html: str | None = None


class Mailer(Protocol):
    async def send(self, email: Email) -> None: ...


def _message(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    if email.message_id:
        message["Message-ID"] = email.message_id
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


class ConsoleMailer:
    """Development: the mail goes to the log, links and all."""

    async def send(self, email: Email) -> None:
        log.info("email", extra={"to": email.to, "subject": email.subject, "body": email.text})


class FileMailer:
    """Each message becomes an .eml file in ``directory``, newest last."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, email: Email) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}.eml"
        path.write_bytes(bytes(_message(email, self.sender)))


class SmtpMailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    async def send(self, email: Email) -> None:
        await asyncio.to_thread(self._send, _message(email, self.sender))

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


def _address(sender: str) -> dict[str, str]:
    name, address = parseaddr(sender)
    return {"email": address, "name": name} if name else {"email": address}


class SendGridMailer:
    """SendGrid's v3 Mail Send API: ``POST /v3/mail/send`` with a bearer key; 202 when queued."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_key: str, sender: str, api_base: str
    ) -> None:
        self.http, self.sender = http, sender
        self._api_key = api_key
        self.url = f"{api_base.rstrip('/')}/v3/mail/send"

    async def send(self, email: Email) -> None:
        # SendGrid wants text/plain before text/html.
        content = [{"type": "text/plain", "value": email.text}]
        if email.html is not None:
            content.append({"type": "text/html", "value": email.html})
        body: dict[str, object] = {
            "personalizations": [{"to": [{"email": email.to}]}],
            "from": _address(self.sender),
            "subject": email.subject,
            "content": content,
        }
        if email.message_id:
            body["headers"] = {"Message-ID": email.message_id}
        try:
            response = await self.http.post(
                self.url, json=body, headers={"Authorization": f"Bearer {self._api_key}"}
            )
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"SendGrid unreachable: {type(error).__name__}") from None
        check_answer("SendGrid", response)


class MailgunMailer:
    """Mailgun's ``POST /v3/{domain}/messages`` with Basic auth ``api:<key>`` and form fields."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_key: str, domain: str, sender: str, api_base: str
    ) -> None:
        self.http, self.sender = http, sender
        self._auth = httpx.BasicAuth("api", api_key)
        self.url = f"{api_base.rstrip('/')}/v3/{domain}/messages"

    async def send(self, email: Email) -> None:
        form = {"from": self.sender, "to": email.to, "subject": email.subject, "text": email.text}
        if email.html is not None:
            form["html"] = email.html
        if email.message_id:
            form["h:Message-Id"] = email.message_id
        try:
            response = await self.http.post(self.url, data=form, auth=self._auth)
        except httpx.TransportError as error:
            raise ProviderUnavailable(f"Mailgun unreachable: {type(error).__name__}") from None
        check_answer("Mailgun", response)
