"""Outgoing email: printed to the log in development, written to files, or sent over SMTP."""

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

log = logging.getLogger("roost.email")


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    # Stable for one piece of news, so a receiver can drop a copy sent twice.
    message_id: str | None = None


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
