"""The worker's own promises: failing handlers retry with backoff and are parked in the end,
`roost serve` runs a loop in development, `roost worker` runs one until told to stop, and a
transaction the database picks as a deadlock victim runs again."""

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from graphql import GraphQLError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.http import create_app
from app.settings import Settings
from app.worker import Worker, WorkerConfig
from db.database import Database
from db.models import OutboxDelivery, OutboxEvent
from gateways.email import ConsoleMailer
from schema.errors import present_error
from services.event_handlers import HANDLERS, E, Handler, HandlerContext, Handlers
from services.events import BookingCreated, Event, emit
from services.payments import Gateways
from tests.helpers import START, FakeClock, committed, running

ROOT = Path(__file__).parent.parent
LOCK_ROW = text("SELECT 1 FROM deadlock_probe WHERE id = :id FOR UPDATE")


@dataclass(frozen=True)
class Broken(Event):
    booking_id: int


@dataclass(frozen=True)
class Deadly(Event):
    booking_id: int


def only(event_class: type[E], handler: Handler[E]) -> Handlers:
    """A registry with one handler, of one kind."""
    handlers = Handlers()
    handlers.on(event_class, "test")(handler)
    return handlers


async def an_event(database: Database, kind: type[Event], *, now: datetime = START) -> int:
    async with committed(database) as session:
        emit(session, kind(booking_id=1), now=now)
        await session.flush()
        return await session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()))


async def event(database: Database, event_id: int) -> OutboxEvent:
    async with database.read_session() as session:
        found = await session.get(OutboxEvent, event_id)
        assert found is not None
        return found


async def test_a_failing_handler_is_retried_later_and_later_then_parked(
    database: Database,
) -> None:
    calls = []

    async def broken(session: AsyncSession, event: Broken, _: HandlerContext) -> None:
        calls.append(event.booking_id)
        raise RuntimeError("the provider is down")

    clock = FakeClock(START)
    worker = Worker(
        database,
        clock=clock,
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        config=WorkerConfig(max_attempts=4),
        handlers=only(Broken, broken),
    )
    event_id = await an_event(database, Broken)
    waits = []
    for attempt in range(1, 5):
        await worker.run_once()
        failed = await event(database, event_id)
        assert (len(calls), failed.attempts) == (attempt, attempt)
        assert failed.last_error == "RuntimeError: the provider is down"
        assert failed.processed_at is None
        if attempt < 4:
            waits.append(failed.available_at - clock.now)
            await worker.run_once()  # not due yet: nothing happens
            assert len(calls) == attempt
            clock.now = failed.available_at
    parked = await event(database, event_id)
    assert parked.parked_at is not None
    # About 2, 4 and 8 seconds (each within a fifth either way).
    for wait, seconds in zip(waits, (2, 4, 8), strict=True):
        assert timedelta(seconds=seconds * 0.8) <= wait <= timedelta(seconds=seconds * 1.2)
    clock.advance(days=1)
    await worker.run_once()
    assert len(calls) == 4  # parked events stay parked


async def test_an_event_whose_workers_keep_dying_is_parked(database: Database) -> None:
    calls = []

    async def handled(session: AsyncSession, event: Deadly, _: HandlerContext) -> None:
        calls.append(event)

    event_id = await an_event(database, Deadly)
    async with committed(database) as session:  # four claims, each worker killed
        dead = await session.get(OutboxEvent, event_id)
        dead.attempts, dead.locked_until = 4, START
    worker = Worker(
        database,
        clock=FakeClock(START + timedelta(minutes=1)),
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        config=WorkerConfig(max_attempts=4),
        handlers=only(Deadly, handled),
    )
    await worker.run_once()
    parked = await event(database, event_id)
    assert parked.parked_at is not None and not calls
    assert parked.last_error == "its worker died while handling it"


async def test_serve_runs_a_worker_loop_in_development(
    settings: Settings, database: Database
) -> None:
    event_id = await an_event(database, BookingCreated, now=datetime.now(UTC))
    app = create_app(
        settings.model_copy(update={"run_worker_in_process": True, "worker_poll_seconds": 0.05})
    )
    async with running(app):
        async with asyncio.timeout(10):
            while (await event(database, event_id)).processed_at is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert not settings.model_copy(update={"env": "production"}).worker_in_process


async def test_roost_worker_handles_events_until_told_to_stop(database: Database) -> None:
    event_id = await an_event(database, BookingCreated, now=datetime.now(UTC))
    env = {**os.environ, "DATABASE_URL": str(database.engine.url.render_as_string(False)),
           "ROOST_WORKER_POLL_SECONDS": "0.1"}  # fmt: skip
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("+asyncpg", "")
    worker = subprocess.Popen(  # noqa: ASYNC220 (waited for in a thread)
        [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env
    )
    try:
        async with asyncio.timeout(30):
            while (await event(database, event_id)).processed_at is None:
                assert worker.poll() is None, "roost worker exited early"
                await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 10)
    assert code == 0


async def test_a_deadlock_victim_runs_again(database: Database) -> None:
    async with committed(database) as session:
        await session.execute(
            text("CREATE TABLE IF NOT EXISTS deadlock_probe (id int PRIMARY KEY)")
        )
        await session.execute(text("TRUNCATE deadlock_probe"))
        await session.execute(text("INSERT INTO deadlock_probe VALUES (1), (2)"))
    runs = []
    both_locked_once = asyncio.Barrier(2)

    def locking(first: int, second: int):
        async def work(session: AsyncSession) -> None:
            runs.append(first)
            await session.execute(LOCK_ROW, {"id": first})
            if runs.count(first) == 1:
                await both_locked_once.wait()  # each holds its first row: they cross next
            await session.execute(LOCK_ROW, {"id": second})

        return work

    try:
        await asyncio.gather(
            database.transaction(locking(1, 2)), database.transaction(locking(2, 1))
        )
    finally:
        async with committed(database) as session:
            await session.execute(text("DROP TABLE deadlock_probe"))
    assert len(runs) == 3  # one of the two was chosen as the victim, and ran again


def test_a_deadlock_that_outlasts_the_retries_reaches_the_client_as_a_conflict() -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    error = GraphQLError("deadlock detected", original_error=DBAPIError("SELECT", {}, Deadlock()))
    shown = present_error(error, validation_errors=frozenset(), hide_suggestions=False)
    assert shown.extensions == {"code": "CONFLICT"}
    assert "deadlock" not in shown.message


@dataclass(frozen=True)
class Twice(Event):
    booking_id: int


@dataclass(frozen=True)
class Ignored(Event):
    booking_id: int


def a_worker(
    database: Database, clock: FakeClock, handlers: Handlers, *, max_attempts: int = 8
) -> Worker:
    return Worker(
        database,
        clock=clock,
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        config=WorkerConfig(max_attempts=max_attempts),
        handlers=handlers,
    )


async def deliveries(database: Database, event_id: int) -> dict[str, tuple]:
    """Each handler's record of the event: (attempts, done, last_error)."""
    async with database.read_session() as session:
        rows = await session.scalars(
            select(OutboxDelivery).where(OutboxDelivery.event_id == event_id)
        )
        return {
            row.handler: (row.attempts, row.processed_at is not None, row.last_error)
            for row in rows
        }


async def test_each_handler_of_an_event_is_retried_on_its_own(database: Database) -> None:
    calls: list[str] = []
    handlers = Handlers()

    @handlers.on(Twice, "steady")
    async def steady(session: AsyncSession, event: Twice, _: HandlerContext) -> None:
        calls.append("steady")

    @handlers.on(Twice, "flaky")
    async def flaky(session: AsyncSession, event: Twice, _: HandlerContext) -> None:
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise RuntimeError("the mail server is away")

    clock = FakeClock(START)
    worker = a_worker(database, clock, handlers)
    event_id = await an_event(database, Twice)
    await worker.run_once()
    assert calls == ["steady", "flaky"]
    failed = await event(database, event_id)
    assert failed.processed_at is None
    assert failed.last_error == "RuntimeError: the mail server is away"
    assert await deliveries(database, event_id) == {
        "steady": (1, True, None),
        "flaky": (1, False, "RuntimeError: the mail server is away"),
    }

    clock.now = failed.available_at
    await worker.run_once()
    assert calls == ["steady", "flaky", "flaky"]  # the one that succeeded is not run again
    assert (await event(database, event_id)).processed_at is not None
    assert await deliveries(database, event_id) == {
        "steady": (1, True, None),
        "flaky": (2, True, "RuntimeError: the mail server is away"),
    }


async def test_an_event_nobody_handles_is_retried_then_parked_never_processed(
    database: Database,
) -> None:
    clock = FakeClock(START)
    worker = a_worker(database, clock, Handlers(), max_attempts=2)
    event_id = await an_event(database, Ignored)
    await worker.run_once()
    failed = await event(database, event_id)
    assert (failed.processed_at, failed.parked_at) == (None, None)
    assert failed.last_error == "Unheard: no handler is registered for Ignored events"
    clock.now = failed.available_at
    await worker.run_once()
    parked = await event(database, event_id)
    assert parked.parked_at is not None and parked.processed_at is None


async def test_an_event_no_class_describes_is_parked(database: Database) -> None:
    async with committed(database) as session:
        session.add(OutboxEvent(kind="Vanished", payload={}, available_at=START))
        session.add(OutboxEvent(kind="BookingConfirmed", payload={}, available_at=START))
    await a_worker(database, FakeClock(START), HANDLERS, max_attempts=1).run_once()
    async with database.read_session() as session:
        events = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert [(e.last_error, e.parked_at is not None, e.processed_at) for e in events] == [
        ("UnknownEvent: no event is called 'Vanished'", True, None),
        ("UnknownEvent: BookingConfirmed without a valid 'booking_id'", True, None),
    ]


def test_every_event_has_a_handler_or_is_declared_heard_by_nobody() -> None:
    declared = [kind for kind, cls in Event.KINDS.items() if cls.__module__ == "services.events"]
    assert "BookingConfirmed" in declared
    for kind in declared:
        HANDLERS.of(kind)  # raises Unheard for a kind nobody thought about
