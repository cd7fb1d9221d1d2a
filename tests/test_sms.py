"""Booking news by text message through Twilio's REST API (a local fake speaking its wire
format): to users who chose SMS and have a verified phone number, in their language, retried
while Twilio is down, not retried when it refuses; the console backend logs without the number."""

import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette

from app.settings import ConfigurationError, load_settings
from app.wiring import build_texter
from db.database import Database
from db.models import OutboxEvent
from gateways.sms import Sms, Undeliverable
from tests.booking_helpers import CANCEL, a_place
from tests.fakes.twilio_api import AUTH_TOKEN, FROM, FakeTwilio
from tests.helpers import FakeClock, gql
from tests.messaging_helpers import (
    choose,
    confirmed_stay,
    served,
    twilio_settings,
    verified_phone,
    worker_with,
)

GUEST_PHONE = "+351912345678"
HOST_PHONE = "+14155550123"


async def test_a_confirmed_booking_texts_the_guest_who_chose_sms(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client, title="Alfama <loft>")
        await verified_phone(client, worker, fake, place.guest, GUEST_PHONE)
        await choose(client, place.guest, channels=["EMAIL", "SMS"], language="pt")
        await confirmed_stay(client, place)
        await worker.run_once()
    [text] = fake.to(GUEST_PHONE)
    assert text["from"] == FROM
    assert text["body"].startswith("Roost: a sua estadia em Alfama <loft>,")
    assert text["body"].endswith("está confirmada.")
    assert fake.sent == [text]  # the host did not choose SMS


async def test_no_text_to_users_who_did_not_choose_sms_or_have_no_phone(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client)
        await verified_phone(client, worker, fake, place.guest, GUEST_PHONE)  # but email only
        await choose(client, place.host, channels=["SMS"])  # SMS, but no phone
        await confirmed_stay(client, place)
        await worker.run_once()
    assert fake.sent == []
    [event] = await events(database, "BookingConfirmed")
    assert event.processed_at is not None


async def test_no_text_to_a_phone_number_not_verified(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client)
        await choose(client, place.guest, phone=GUEST_PHONE, channels=["SMS"])
        await verified_phone(client, worker, fake, place.host, HOST_PHONE)
        await choose(client, place.host, channels=["SMS"])
        await confirmed_stay(client, place)
        await worker.run_once()
    assert fake.to(GUEST_PHONE) == []
    assert len(fake.to(HOST_PHONE)) == 1  # the same news, to a verified number


async def test_a_cancellation_texts_guest_and_host_who_chose_sms(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client)
        await verified_phone(client, worker, fake, place.guest, GUEST_PHONE)
        await verified_phone(client, worker, fake, place.host, HOST_PHONE)
        await choose(client, place.guest, channels=["SMS"])
        await choose(client, place.host, channels=["SMS"])
        booking_id = await confirmed_stay(client, place)
        canceled = await gql(client, CANCEL, {"id": booking_id, "reason": "Plans changed"},
                             headers=place.as_guest)  # fmt: skip
        assert "errors" not in canceled, canceled
        await worker.run_once()
    [_, to_guest] = fake.to(GUEST_PHONE)
    assert "is canceled. Refund:" in to_guest["body"]
    [_, to_host] = fake.to(HOST_PHONE)
    assert "those nights are free again" in to_host["body"]


async def test_a_twilio_outage_is_retried_and_one_text_then_sent(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client)
        await verified_phone(client, worker, fake, place.guest, GUEST_PHONE)
        await choose(client, place.guest, channels=["SMS"])
        await confirmed_stay(client, place)
        fake.faults.fail_next(500)
        await worker.run_once()
        assert fake.sent == []
        [pending] = await events(database, "BookingConfirmed")
        assert pending.processed_at is None
        clock.advance(seconds=3)
        await worker.run_once()
        clock.advance(hours=2)
        await worker.run_once()
    assert len(fake.to(GUEST_PHONE)) == 1


async def test_a_refused_text_is_not_retried_and_the_token_never_logged(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        place = await a_place(client)
        await verified_phone(client, worker, fake, place.guest, GUEST_PHONE)
        await choose(client, place.guest, channels=["SMS"])
        await confirmed_stay(client, place)
        fake.faults.fail_next(400)
        with caplog.at_level(logging.DEBUG):
            await worker.run_once()
            clock.advance(hours=2)
            await worker.run_once()
    assert fake.sent == []
    assert fake.faults.calls == 1
    [event] = await events(database, "BookingConfirmed")
    assert event.processed_at is not None
    assert "Twilio answered 400" in caplog.text
    assert AUTH_TOKEN not in caplog.text


async def test_twilio_refuses_a_wrong_token(app: Starlette) -> None:
    fake = FakeTwilio()
    async with served(fake) as url:
        settings = app.state.settings.model_copy(update=twilio_settings(url))
        good = build_texter(settings)
        await good.send(Sms(to=GUEST_PHONE, body="hello"))
        bad = build_texter(settings.model_copy(update={"twilio_auth_token": SecretStr("nope")}))
        with pytest.raises(Undeliverable, match="Twilio answered 401"):
            await bad.send(Sms(to=GUEST_PHONE, body="hello"))
    assert len(fake.sent) == 1


async def test_the_console_backend_logs_the_message_without_the_number(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    texter = build_texter(app.state.settings)  # development's default: console
    with caplog.at_level(logging.INFO, logger="roost.sms"):
        await texter.send(Sms(to=GUEST_PHONE, body="Your stay is confirmed."))
    [record] = [r for r in caplog.records if r.name == "roost.sms"]
    assert record.body == "Your stay is confirmed."  # type: ignore[attr-defined]
    assert GUEST_PHONE not in str(record.__dict__)


async def events(database: Database, kind: str) -> list[OutboxEvent]:
    async with database.read_session() as session:
        return list(await session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)))


@pytest.mark.parametrize(
    ("backend", "missing"),
    [
        ({"ROOST_SMS_BACKEND": "twilio"}, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM"),
        ({"ROOST_EMAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
        ({"ROOST_EMAIL_BACKEND": "mailgun", "MAILGUN_API_KEY": "key"}, "MAILGUN_DOMAIN"),
    ],
)
def test_a_provider_backend_without_its_credentials_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: dict[str, str], missing: str
) -> None:
    for name in ("ROOST_ENV", "SENDGRID_API_KEY", "MAILGUN_API_KEY", "MAILGUN_DOMAIN",
                 "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
                 "ROOST_SMS_BACKEND", "ROOST_EMAIL_BACKEND"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path))
    for name, value in backend.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"needs {missing}\\."):
        load_settings()
