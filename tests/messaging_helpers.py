"""Email and SMS in tests: the fakes of SendGrid, Mailgun and Twilio on loopback ports, a worker
whose mailer and texter are pointed at them, and users' channels, language and phone."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from app.wiring import build_mailer, build_worker
from app.worker import Worker
from tests.accounts_helpers import ME, bearer
from tests.booking_helpers import Place, a_place, booked, pay
from tests.fakes import mailgun_api, sendgrid_api, twilio_api
from tests.fakes.mailgun_api import FakeMailgun
from tests.fakes.sendgrid_api import FakeSendGrid
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import gql, serving

UPDATE = """
mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) { phone preferences { language notificationChannels } }
}
"""


def sendgrid_settings(url: str) -> dict[str, object]:
    return {
        "email_backend": "sendgrid",
        "sendgrid_api_key": SecretStr(sendgrid_api.API_KEY),
        "sendgrid_api_base": url,
    }


def mailgun_settings(url: str) -> dict[str, object]:
    return {
        "email_backend": "mailgun",
        "mailgun_api_key": SecretStr(mailgun_api.API_KEY),
        "mailgun_domain": mailgun_api.DOMAIN,
        "mailgun_api_base": url,
    }


def twilio_settings(url: str) -> dict[str, object]:
    return {
        "sms_backend": "twilio",
        "twilio_account_sid": twilio_api.ACCOUNT_SID,
        "twilio_auth_token": SecretStr(twilio_api.AUTH_TOKEN),
        "twilio_from": twilio_api.FROM,
        "twilio_api_base": url,
    }


@asynccontextmanager
async def served(fake: FakeSendGrid | FakeMailgun | FakeTwilio) -> AsyncIterator[str]:
    async with serving(fake.app()) as url:
        yield url


def worker_with(app: Starlette, **settings: object) -> Worker:
    """The app's worker (its clock, its services) with the messaging settings given."""
    changed = app.state.settings.model_copy(update=settings)
    services = replace(app.state.services, mailer=build_mailer(changed, httpx.AsyncClient()))
    return build_worker(changed, app.state.database, services)


async def email_of(client: httpx.AsyncClient, token: str) -> str:
    body = await gql(client, ME, headers=bearer(token))
    return body["data"]["me"]["email"]


async def choose(client: httpx.AsyncClient, token: str, **changes: object) -> dict:
    """updateProfile as the token's user: ``phone``, ``language``, ``channels``."""
    preferences: dict[str, object] = {}
    if "language" in changes:
        preferences["language"] = changes.pop("language")
    if "channels" in changes:
        preferences["notificationChannels"] = changes.pop("channels")
    body = await gql(
        client, UPDATE, {"input": {**changes, "preferences": preferences}}, headers=bearer(token)
    )
    assert "errors" not in body, body
    return body["data"]["updateProfile"]


REQUEST_PHONE_CODE = "mutation { requestPhoneVerification }"
VERIFY_PHONE = """
mutation($code: String!) { verifyPhone(code: $code) { phone phoneVerified } }
"""
_CODE = re.compile(r"\b([0-9]{6})\b")


def code_in(text: dict) -> str:
    """The verification code in a text message the fake Twilio received."""
    found = _CODE.search(text["body"])
    assert found is not None, text
    return found.group(1)


async def verified_phone(
    client: httpx.AsyncClient, worker: Worker, fake: FakeTwilio, token: str, phone: str
) -> None:
    """Puts ``phone`` on file for the token's user and proves it with the code texted to it,
    as a person would; the fake then forgets that text."""
    await choose(client, token, phone=phone)
    asked = await gql(client, REQUEST_PHONE_CODE, headers=bearer(token))
    assert asked == {"data": {"requestPhoneVerification": True}}, asked
    await worker.run_once()
    verified = await gql(client, VERIFY_PHONE, {"code": code_in(fake.to(phone)[-1])},
                         headers=bearer(token))  # fmt: skip
    assert verified == {"data": {"verifyPhone": {"phone": phone, "phoneVerified": True}}}, verified
    fake.sent.clear()
    fake.faults.calls = 0


async def confirmed_stay(client: httpx.AsyncClient, place: Place) -> str:
    """Books and pays three nights at ``place`` as its guest: the booking's id."""
    booking = await booked(client, place, 10, 13)
    await pay(client, place, booking["id"])
    return booking["id"]


async def a_titled_place(client: httpx.AsyncClient, title: str) -> Place:
    return await a_place(client, title=title)
