"""Account mail (verification, password reset) goes through the outbox: written with the change,
sent by the worker, sent again when sending failed, and never with its secret at rest."""

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.wiring import build_worker
from db.database import Database
from db.models import OneTimeToken, OutboxEvent
from gateways.email import Email, Mailer
from tests.accounts_helpers import mails_to, register, token_in, unique_email
from tests.helpers import FakeClock, StatementCounter, gql

REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"


async def outbox(database: Database) -> list[OutboxEvent]:
    async with database.read_session() as session:
        return list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


async def tokens(database: Database) -> int:
    async with database.read_session() as session:
        return await session.scalar(select(func.count()).select_from(OneTimeToken))


async def test_a_verification_mail_waits_in_the_outbox_without_its_secret(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    [requested] = await outbox(database)
    assert requested.kind == "EmailVerificationRequested"
    assert requested.payload.keys() == {"user_id"}
    assert await tokens(database) == 0  # minted when the mail goes out

    [mail] = await mails_to(app, email)
    assert await tokens(database) == 1
    assert token_in(mail) not in str([event.payload for event in await outbox(database)])
    assert await gql(client, VERIFY, {"t": token_in(mail)}) == {"data": {"verifyEmail": True}}


class FailsOnce:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.failed = False

    async def send(self, email: Email) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the mail server hung up")
        await self.mailer.send(email)


async def test_a_mail_that_could_not_be_sent_is_sent_again_with_a_working_link(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    email = unique_email()
    await register(client, email=email)
    worker = build_worker(app.state.settings, database, app.state.services)
    worker.mailer = FailsOnce(worker.mailer)

    await worker.run_once()
    [failed] = await outbox(database)
    assert failed.processed_at is None
    assert failed.last_error == "ConnectionError: the mail server hung up"
    assert await tokens(database) == 0  # the token of the mail never sent was not kept

    clock.advance(seconds=3)  # the first retry comes after about two seconds
    await worker.run_once()
    [mail] = await mails_to(app, email)
    assert await gql(client, VERIFY, {"t": token_in(mail)}) == {"data": {"verifyEmail": True}}


async def test_a_reset_for_an_unknown_address_does_the_same_work_and_mails_nobody(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    counts = []
    for address in (email, unique_email("nobody")):
        with StatementCounter(database) as counter:
            answer = await gql(client, REQUEST_RESET, {"e": address})
        assert answer == {"data": {"requestPasswordReset": True}}
        counts.append(counter.count)
    assert counts[0] == counts[1]

    [_, reset] = await mails_to(app, email, count=2)  # verification, then reset
    assert reset["Subject"] == "Reset your Roost password"
    events = await outbox(database)
    assert [event.kind for event in events] == ["EmailVerificationRequested"] + [
        "PasswordResetRequested"
    ] * 2
    assert all(event.processed_at is not None for event in events)
