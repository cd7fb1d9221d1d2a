"""Phone verification through HTTP: a 6-digit code texted (through the fake Twilio) to the
number on file, typed back within 10 minutes and 5 tries; a new number must be proved again;
asking is rate limited; the code is never logged nor stored in the clear."""

import logging
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from app.worker import Worker
from db.database import Database
from db.models import OutboxEvent, PhoneVerification, User
from tests.accounts_helpers import bearer, error_code, register, unique_email
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import FakeClock, committed, gql
from tests.messaging_helpers import (
    REQUEST_PHONE_CODE,
    VERIFY_PHONE,
    choose,
    code_in,
    served,
    twilio_settings,
    verified_phone,
    worker_with,
)

PHONE = "+351912345678"
OTHER_PHONE = "+351961234567"
STATE = "{ me { phone phoneVerified } }"
USER = "query($id: ID!) { node(id: $id) { ... on User { phone phoneVerified } } }"


async def ask(client: httpx.AsyncClient, token: str) -> dict:
    return await gql(client, REQUEST_PHONE_CODE, headers=bearer(token))


async def verify(client: httpx.AsyncClient, token: str, code: str) -> dict:
    return await gql(client, VERIFY_PHONE, {"code": code}, headers=bearer(token))


def reason(body: dict) -> str:
    assert error_code(body) == "BAD_USER_INPUT", body
    found: str = body["errors"][0]["extensions"]["reason"]
    return found


async def state(client: httpx.AsyncClient, token: str) -> dict:
    body = await gql(client, STATE, headers=bearer(token))
    return body["data"]["me"]


async def texted_code(
    client: httpx.AsyncClient, worker: Worker, fake: FakeTwilio, token: str, phone: str = PHONE
) -> str:
    """Asks for a code and answers the one the fake Twilio received."""
    assert await ask(client, token) == {"data": {"requestPhoneVerification": True}}
    await worker.run_once()
    return code_in(fake.to(phone)[-1])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_code_texted_to_the_number_verifies_it(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTwilio()
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE, channels=["EMAIL"])  # asked for: channels aside
    assert await state(client, token) == {"phone": PHONE, "phoneVerified": False}
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        with caplog.at_level(logging.DEBUG):
            code = await texted_code(client, worker, fake, token)
            [text] = fake.sent
            assert text["to"] == PHONE
            assert text["body"].startswith(f"Roost: your verification code is {code}.")
            async with committed(database) as session:
                [pending] = (await session.scalars(select(PhoneVerification))).all()
                payloads = [str(e.payload) for e in await session.scalars(select(OutboxEvent))]
            body = await verify(client, token, code)
    assert body == {"data": {"verifyPhone": {"phone": PHONE, "phoneVerified": True}}}
    assert await state(client, token) == {"phone": PHONE, "phoneVerified": True}
    # Never in the clear: not in the database, not in the outbox, not in a log.
    assert code not in pending.code_sealed
    assert not any(code in payload for payload in payloads)
    assert code not in caplog.text
    # Used: gone; asking again sends nothing now that the number is verified.
    async with committed(database) as session:
        assert (await session.scalars(select(PhoneVerification))).all() == []
    assert await ask(client, token) == {"data": {"requestPhoneVerification": False}}


async def test_asking_without_a_number_on_file_is_bad_input(client: httpx.AsyncClient) -> None:
    token = (await register(client))["accessToken"]
    body = await ask(client, token)
    assert reason(body) == "PHONE_MISSING"
    assert "phone" in body["errors"][0]["extensions"]["fields"]
    assert reason(await verify(client, token, "123456")) == "PHONE_MISSING"


async def test_asking_and_verifying_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert error_code(await gql(client, REQUEST_PHONE_CODE)) == "UNAUTHENTICATED"
    assert error_code(await gql(client, VERIFY_PHONE, {"code": "123456"})) == "UNAUTHENTICATED"


async def test_a_wrong_code_is_refused_and_five_wrong_tries_void_the_code(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE)
    async with served(fake) as url:
        code = await texted_code(client, worker_with(app, **twilio_settings(url)), fake, token)
    assert reason(await verify(client, token, "12345")) == "CODE_WRONG"  # not six digits
    for left in (4, 3, 2, 1):
        body = await verify(client, token, wrong(code))
        assert reason(body) == "CODE_WRONG"
        assert f"{left} tr" in body["errors"][0]["extensions"]["fields"]["code"]
    assert reason(await verify(client, token, wrong(code))) == "CODE_WRONG"  # the fifth
    # The right code, too late: the code is void.
    assert reason(await verify(client, token, code)) == "CODE_EXPIRED"
    assert await state(client, token) == {"phone": PHONE, "phoneVerified": False}


async def test_the_code_expires_after_ten_minutes(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    fake = FakeTwilio()
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE)
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        code = await texted_code(client, worker, fake, token)
        clock.advance(minutes=10, seconds=1)
        assert reason(await verify(client, token, code)) == "CODE_EXPIRED"
        # A new code works, and the earlier one no longer does.
        fresh = await texted_code(client, worker, fake, token)
        clock.advance(minutes=9)
        if fresh != code:
            assert reason(await verify(client, token, code)) == "CODE_WRONG"
        assert "errors" not in await verify(client, token, f"{fresh[:3]} {fresh[3:]}")
    assert await state(client, token) == {"phone": PHONE, "phoneVerified": True}


async def test_a_new_number_must_be_verified_again_and_a_code_sent_before_voids(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    fake = FakeTwilio()
    token = (await register(client))["accessToken"]
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        await verified_phone(client, worker, fake, token, PHONE)
        # The same number given again (as a profile form does) is no change.
        await choose(client, token, phone=PHONE.replace("+351", "+351 "))
        assert await state(client, token) == {"phone": PHONE, "phoneVerified": True}
        await choose(client, token, phone=OTHER_PHONE)
        assert await state(client, token) == {"phone": OTHER_PHONE, "phoneVerified": False}
        code = await texted_code(client, worker, fake, token, OTHER_PHONE)
        # The code went to the other number; the number changes back before it is typed in.
        await choose(client, token, phone=PHONE)
        assert await state(client, token) == {"phone": PHONE, "phoneVerified": False}
        assert reason(await verify(client, token, code)) == "CODE_EXPIRED"
        # Clearing the number clears its verification too.
        await verified_phone(client, worker, fake, token, PHONE)
        await choose(client, token, phone=None)
        assert await state(client, token) == {"phone": None, "phoneVerified": False}


async def test_a_code_is_not_sent_to_a_number_removed_before_the_worker_ran(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    fake = FakeTwilio()
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE)
    assert await ask(client, token) == {"data": {"requestPhoneVerification": True}}
    await choose(client, token, phone=None)
    async with served(fake) as url:
        await worker_with(app, **twilio_settings(url)).run_once()
    assert fake.sent == []


async def test_asking_for_codes_is_rate_limited_per_hour(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE)
    services = app.state.services
    app.state.services = replace(services, phone_codes_per_hour=2)
    try:
        for _ in range(2):
            assert "errors" not in await ask(client, token)
        limited = await ask(client, token)
        assert error_code(limited) == "RATE_LIMITED"
        assert limited["errors"][0]["extensions"]["retryAfter"] > 60  # an hour's window
        # Another account has its own budget.
        other = (await register(client))["accessToken"]
        await choose(client, other, phone=OTHER_PHONE)
        assert "errors" not in await ask(client, other)
    finally:
        app.state.services = replace(
            app.state.services, phone_codes_per_hour=services.phone_codes_per_hour
        )


async def test_others_see_no_phone_nor_whether_it_is_verified_but_an_admin_does(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    fake = FakeTwilio()
    owner = await register(client)
    stranger = await register(client)
    admin_email = unique_email("admin")
    admin = await register(client, email=admin_email)
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == admin_email).values(roles=["GUEST", "ADMIN"])
        )
    async with served(fake) as url:
        worker = worker_with(app, **twilio_settings(url))
        await verified_phone(client, worker, fake, owner["accessToken"], PHONE)
    variables = {"id": owner["user"]["id"]}
    seen = await gql(client, USER, variables, headers=bearer(stranger["accessToken"]))
    assert seen == {"data": {"node": {"phone": None, "phoneVerified": None}}}
    seen = await gql(client, USER, variables, headers=bearer(admin["accessToken"]))
    assert seen == {"data": {"node": {"phone": PHONE, "phoneVerified": True}}}


async def test_the_console_backend_does_not_log_the_code(
    app: Starlette, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = (await register(client))["accessToken"]
    await choose(client, token, phone=PHONE)
    assert await ask(client, token) == {"data": {"requestPhoneVerification": True}}
    with caplog.at_level(logging.DEBUG):
        await worker_with(app).run_once()  # development's default: the console texter
    [record] = [r for r in caplog.records if r.name == "roost.sms"]
    assert record.body == "(confidential: not logged)"  # type: ignore[attr-defined]
    async with committed(app.state.database) as session:
        assert await session.scalar(select(PhoneVerification.user_id)) is not None
