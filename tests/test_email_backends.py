"""Booking and payment news by email through SendGrid's and Mailgun's HTTP APIs (local fakes
speaking their wire formats) and SMTP: sent by the worker after the booking's transaction, in
text and HTML from templates in the reader's language, only to users who take email, retried
while a provider is down, not retried when it refuses, and never failing the booking."""

import asyncio
import logging
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from starlette.applications import Starlette

from db.database import Database
from db.models import OutboxEvent
from tests.accounts_helpers import mails_to, register, token_in, unique_email
from tests.booking_helpers import CANCEL, CONFIRM_PAYMENT, START_PAYMENT, a_place, booked, read
from tests.fakes.mailgun_api import FakeMailgun
from tests.fakes.sendgrid_api import API_KEY as SENDGRID_KEY
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.helpers import FakeClock, free_port, gql
from tests.messaging_helpers import (
    choose,
    confirmed_stay,
    email_of,
    mailgun_settings,
    sendgrid_settings,
    served,
    worker_with,
)

TITLE = "<script>alert('x')</script> Loft & view"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Loft &amp; view"


def parts_of_sendgrid(mail: dict) -> dict[str, str]:
    return {"subject": mail["subject"], **{part["type"]: part["value"] for part in mail["content"]}}


def parts_of_mailgun(mail: dict) -> dict[str, str]:
    return {"subject": mail["subject"], "text/plain": mail["text"], "text/html": mail["html"]}


def confirmations(fake: FakeSendGrid, address: str) -> list[dict]:
    return [mail for mail in fake.to(address) if "confirmed" in mail["subject"]]


@pytest.mark.parametrize("backend", ["sendgrid", "mailgun"])
async def test_a_confirmed_booking_mails_the_guest_in_text_and_html_in_their_language(
    app: Starlette, client: httpx.AsyncClient, database: Database, backend: str
) -> None:
    fake = FakeSendGrid() if backend == "sendgrid" else FakeMailgun()
    parts = parts_of_sendgrid if backend == "sendgrid" else parts_of_mailgun
    async with served(fake) as url:
        settings = sendgrid_settings(url) if backend == "sendgrid" else mailgun_settings(url)
        worker = worker_with(app, **settings)
        place = await a_place(client, title=TITLE)
        await choose(client, place.guest, language="pt-BR")  # Portuguese has a translation
        guest, host = await email_of(client, place.guest), await email_of(client, place.host)
        await confirmed_stay(client, place)
        await worker.run_once()

    [to_guest] = [parts(mail) for mail in fake.to(guest) if "confirmada" in mail["subject"]]
    assert to_guest["subject"] == f"A sua estadia em {TITLE} está confirmada"
    assert f"A sua reserva em {TITLE} está confirmada" in to_guest["text/plain"]
    assert ESCAPED in to_guest["text/html"]
    assert "<script>" not in to_guest["text/html"]
    assert 'lang="pt"' in to_guest["text/html"]
    # The host reads English, the fallback.
    [to_host] = [parts(mail) for mail in fake.to(host) if "reservation" in mail["subject"]]
    assert to_host["subject"] == f"New reservation at {TITLE}"
    assert ESCAPED in to_host["text/html"]


async def test_a_language_without_templates_falls_back_to_english(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeSendGrid()
    async with served(fake) as url:
        worker = worker_with(app, **sendgrid_settings(url))
        place = await a_place(client)
        await choose(client, place.guest, language="de")
        guest = await email_of(client, place.guest)
        await confirmed_stay(client, place)
        await worker.run_once()
    [mail] = [m for m in fake.to(guest) if "confirmed" in m["subject"]]
    assert mail["subject"] == "Your stay at Alfama loft with a view is confirmed"


async def test_only_users_who_chose_email_are_mailed_news(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeSendGrid()
    async with served(fake) as url:
        worker = worker_with(app, **sendgrid_settings(url))
        place = await a_place(client)
        await choose(client, place.guest, channels=["IN_APP"])
        guest, host = await email_of(client, place.guest), await email_of(client, place.host)
        await worker.run_once()  # the account mails go whatever the channels
        before = len(fake.to(guest))
        await confirmed_stay(client, place)
        await worker.run_once()
    assert len(fake.to(guest)) == before
    assert [m for m in fake.to(host) if "reservation" in m["subject"]]


async def test_a_provider_error_is_retried_and_the_mail_then_sent_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    fake = FakeSendGrid()
    async with served(fake) as url:
        worker = worker_with(app, **sendgrid_settings(url))
        place = await a_place(client)
        guest = await email_of(client, place.guest)
        await worker.run_once()
        await confirmed_stay(client, place)
        fake.faults.fail_next(503)
        await worker.run_once()
        assert confirmations(fake, guest) == []
        [pending] = await events(database, "BookingConfirmed")
        assert pending.processed_at is None
        assert "503" in (pending.last_error or "")

        clock.advance(seconds=3)  # the first retry comes after about two seconds
        await worker.run_once()
    assert len(confirmations(fake, guest)) == 1
    [done] = await events(database, "BookingConfirmed")
    assert done.processed_at is not None


async def test_a_retry_after_the_hosts_provider_error_does_not_mail_the_guest_again(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    fake = FakeSendGrid()
    async with served(fake) as url:
        worker = worker_with(app, **sendgrid_settings(url))
        place = await a_place(client)
        guest, host = await email_of(client, place.guest), await email_of(client, place.host)
        await worker.run_once()
        await confirmed_stay(client, place)
        fake.faults.fail_next(503, after=1)  # the guest's mail goes, the host's fails
        await worker.run_once()
        clock.advance(seconds=3)
        await worker.run_once()
    assert len(confirmations(fake, guest)) == 1
    assert len([m for m in fake.to(host) if "reservation" in m["subject"]]) == 1


async def test_a_refused_mail_is_logged_and_not_retried(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeSendGrid()
    async with served(fake) as url:
        worker = worker_with(app, **sendgrid_settings(url))
        place = await a_place(client)
        guest, host = await email_of(client, place.guest), await email_of(client, place.host)
        await worker.run_once()
        await confirmed_stay(client, place)
        calls = fake.faults.calls
        fake.faults.fail_next(400)  # the guest's mail
        with caplog.at_level(logging.DEBUG):
            await worker.run_once()
            clock.advance(hours=2)
            await worker.run_once()
    assert confirmations(fake, guest) == []
    assert fake.faults.calls == calls + 2  # the guest's, refused, and the host's: nothing again
    assert [m for m in fake.to(host) if "reservation" in m["subject"]]
    [done] = await events(database, "BookingConfirmed")
    assert done.processed_at is not None
    assert "SendGrid answered 400" in caplog.text
    assert SENDGRID_KEY not in caplog.text


async def test_the_booking_flow_works_while_the_provider_is_down(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = worker_with(app, **sendgrid_settings(f"http://127.0.0.1:{free_port()}"))
    place = await a_place(client)
    booking_id = await confirmed_stay(client, place)
    with caplog.at_level(logging.DEBUG):
        await worker.run_once()
    [pending] = await events(database, "BookingConfirmed")
    assert pending.processed_at is None
    assert (pending.last_error or "").startswith("ProviderUnavailable: SendGrid unreachable")
    assert SENDGRID_KEY not in caplog.text
    canceled = await gql(client, CANCEL, {"id": booking_id, "reason": None}, headers=place.as_guest)
    assert "errors" not in canceled, canceled
    assert (await read(client, booking_id, place.as_guest) or {})["status"] == "CANCELED"


async def test_smtp_sends_text_and_html_alternatives(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    received: list[EmailMessage] = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope) -> str:
            received.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        worker = worker_with(app, email_backend="smtp", smtp_host="127.0.0.1", smtp_port=port)
        place = await a_place(client, title=TITLE)
        guest = await email_of(client, place.guest)
        await confirmed_stay(client, place)
        await worker.run_once()
    finally:
        await asyncio.to_thread(controller.stop)
    [mail] = [m for m in received if m["To"] == guest and "confirmed" in m["Subject"]]
    assert mail.is_multipart()
    assert isinstance(mail, Message)
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert TITLE in text.get_content()
    assert ESCAPED in html.get_content()
    assert mail["Message-ID"].startswith("<event-")


async def events(database: Database, kind: str) -> list[OutboxEvent]:
    async with database.read_session() as session:
        return list(await session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)))


async def test_a_refund_and_a_declined_payment_are_mailed_to_the_guest(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeMailgun()
    async with served(fake) as url:
        worker = worker_with(app, **mailgun_settings(url))
        place = await a_place(client)
        guest = await email_of(client, place.guest)
        declined = await booked(client, place, 20, 22)
        started = await gql(
            client, START_PAYMENT, {"id": declined["id"], "provider": "TEST"},
            headers=place.as_guest,
        )  # fmt: skip
        payment_id = started["data"]["startPayment"]["payment"]["id"]
        await gql(
            client, CONFIRM_PAYMENT, {"id": payment_id, "succeed": False}, headers=place.as_guest
        )
        booking_id = await confirmed_stay(client, place)
        canceled = await gql(client, CANCEL, {"id": booking_id}, headers=place.as_guest)
        assert "errors" not in canceled, canceled
        for _ in range(3):  # the refund is asked for, then its result is applied
            await worker.run_once()
    subjects = [mail["subject"] for mail in fake.to(guest)]
    assert "Your payment did not go through" in subjects
    [refunded] = [mail for mail in fake.to(guest) if "refunded" in mail["subject"]]
    assert refunded["subject"].endswith("refunded for Alfama loft with a view")
    assert "€" in refunded["subject"] and "€" in refunded["html"]


async def test_account_mails_come_from_templates_in_the_users_language(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    address = unique_email()
    token = (await register(client, email=address))["accessToken"]
    await choose(client, token, language="pt-PT")
    reset = "mutation($e: String!) { requestPasswordReset(email: $e) }"
    assert "errors" not in await gql(client, reset, {"e": address})
    [verification, mail] = await mails_to(app, address, count=2)
    assert verification["Subject"] == "Confirme o seu email no Roost"
    assert mail["Subject"] == "Redefina a sua palavra-passe do Roost"
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    link = f"/reset-password?token={token_in(mail)}"
    assert link in html.get_payload(decode=True).decode()
