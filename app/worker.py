"""The worker: claims outbox events and runs their handlers, moves bookings along in time,
finishes payments whose answer a crash lost, pays hosts for their completed stays, and
publishes reviews whose window to review closed.

Any number of workers run at once, on any machines. An event is claimed for a lease (its row
picked with FOR UPDATE SKIP LOCKED, so two workers never claim the same one). Each of its
handlers then runs in a transaction of its own that locks the row again and records that
handler done (an ``outbox_delivery``); what the handler writes commits with that record, or not
at all. Once every handler is done the event is processed. A worker that dies mid-event leaves
the claim to lapse, and another worker runs the handlers not yet done. An event that fails (a
handler raised, or no handler or event class knows its kind) is retried with exponential
backoff, running only the handlers not yet done, and parked after ``max_attempts``.
"""

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth.crypto import FieldCipher
from db.bell import OUTBOX_CHANNEL, Bell
from db.database import Database
from db.models import OutboxDelivery, OutboxEvent
from db.outages import note_if_unreachable
from gateways.calendar_feeds import FeedFetcher
from gateways.email import Mailer
from gateways.payments import PaymentLookup
from gateways.pubsub import PubSub
from gateways.sms import ConsoleTexter, Texter
from services import bookings, calendar_imports, checkout, payments, payouts, reviews
from services.bookings import BookingRules
from services.errors import DomainError
from services.event_handlers import HANDLERS, Handler, HandlerContext, Handlers
from services.events import Event, decode
from services.payments import Gateways, ProviderCall
from services.payouts import PayoutPolicy
from services.platform_settings import PlatformSettingsCache, defaults_of

# `roost worker` serves no /metrics: prometheus-client stays unloaded there.
if TYPE_CHECKING:
    from app.metrics import Metrics

log = logging.getLogger("roost.worker")

MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 1.0
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    batch_size: int = 20


def backoff(attempts: int) -> timedelta:
    """2, 4, 8, ... seconds after each failure, up to an hour, with jitter against herds."""
    seconds = min(2**attempts, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 (not a secret)


class Worker:
    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime],
        gateways: Gateways,
        mailer: Mailer,
        frontend_url: str,
        config: WorkerConfig = WorkerConfig(),
        handlers: Handlers = HANDLERS,
        heartbeat: Path | None = None,
        rules: BookingRules | None = None,
        payout_policy: PayoutPolicy | None = None,
        texter: Texter | None = None,
        cipher: FieldCipher | None = None,
        pubsub: PubSub | None = None,
        metrics: "Metrics | None" = None,
        platform_settings: PlatformSettingsCache | None = None,
        listing_moderation: bool = False,
        calendar_feeds: FeedFetcher | None = None,
        calendar_import_every: timedelta = timedelta(minutes=30),
    ) -> None:
        self.calendar_feeds = calendar_feeds or FeedFetcher()
        self.calendar_import_every = calendar_import_every
        self.metrics = metrics
        self.platform_settings = platform_settings
        self.listing_moderation = listing_moderation
        self.pubsub = pubsub
        self.texter = texter or ConsoleTexter()
        self.cipher = cipher
        # The environment's: what admins changed is laid over them each pass (``refresh``).
        self.base_rules = self.rules = rules or BookingRules()
        self.base_payout_policy = self.payout_policy = payout_policy or PayoutPolicy()
        self.database = database
        self.clock = clock
        self.gateways = gateways
        self.mailer = mailer
        self.frontend_url = frontend_url
        self.config = config
        self.handlers = handlers
        self.heartbeat = heartbeat

    async def run_once(self) -> int:
        """One pass: due bookings moved along, then every due event handled. Answers how many
        things were done, so a loop knows whether to go again at once."""
        done = await self.sweep()
        self.beat()
        while claimed := await self.claim():
            for event_id in claimed:
                await self.handle(event_id)
                self.beat()
            done += len(claimed)
        return done

    def beat(self) -> None:
        """Marks the heartbeat file: this worker reached the database and is getting on."""
        if self.heartbeat is None:
            return
        try:
            self.heartbeat.touch()
        except OSError:
            # The work matters more than its heartbeat: the health check will tell.
            log.warning("cannot touch the heartbeat file %s", self.heartbeat, exc_info=True)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Passes until ``stop``: at once while there is work, on the outbox bell (a new event
        committed) or else every ``poll_seconds`` (things come due in time, too)."""
        log.info("worker started")
        bell = Bell(self.database, OUTBOX_CHANNEL)
        bell.start()

        async def ring_on_stop() -> None:
            await stop.wait()
            bell.ring()

        stopping = asyncio.create_task(ring_on_stop())
        try:
            while not stop.is_set():
                try:
                    done = await self.run_once()
                except Exception as error:  # the loop outlives a bad pass (a database restart)
                    self._count_failure("pass")
                    if not note_if_unreachable(error):  # an outage is logged once, not each poll
                        log.exception("worker pass failed")
                    done = 0
                if not done:
                    await bell.wait(self.config.poll_seconds)
        finally:
            stopping.cancel()
            await bell.stop()
        log.info("worker stopped")

    async def sweep(self) -> int:
        """Payments whose answer was lost are asked about again; holds that lapsed are
        released; stays that ended are completed. No provider is asked while a transaction
        of ours is open: each batch commits first, then each movement is settled."""
        now = self.clock()
        await self.refresh_settings()
        checked = await self.check_waiting(now)
        unanswered = await self.database.transaction(partial(payments.claim_unanswered, now=now))
        expired, releases = await self.database.transaction(partial(checkout.expire_due, now=now))
        for call in (*unanswered, *releases):
            await self.settle(call)
        completed = await self.database.transaction(partial(bookings.complete_due, now=now))
        published = await self.database.transaction(partial(reviews.publish_due, now=now))
        paid = await self.pay_hosts(now)
        synced = await self.sync_calendars(now)
        return checked + len(unanswered) + expired + completed + published + paid + synced

    async def sync_calendars(self, now: datetime) -> int:
        """Imported calendars due are claimed (committed), then fetched side by side, each
        applied on its own: see services/calendar_imports.py. A pass waits at most one fetch's
        timeout, however slow the feeds."""
        due = await self.database.transaction(
            partial(calendar_imports.claim_due, now=now, every=self.calendar_import_every)
        )

        async def sync(feed: calendar_imports.Due) -> None:
            try:
                await calendar_imports.fetch_and_apply(
                    self.database.transaction, self.calendar_feeds, feed, now=self.clock()
                )
            except Exception:
                log.exception("calendar import %s: not applied; tried again later", feed.import_id)

        await asyncio.gather(*(sync(feed) for feed in due))
        return len(due)

    async def refresh_settings(self) -> None:
        """The platform's settings in force for this pass (an admin may have changed them)."""
        if self.platform_settings is None:
            return
        settings = await self.platform_settings.current(
            defaults_of(
                self.base_rules, self.base_payout_policy, moderation_enabled=self.listing_moderation
            )
        )
        self.rules = settings.booking_rules(self.base_rules)
        self.payout_policy = settings.payout_policy(self.base_payout_policy)

    async def pay_hosts(self, now: datetime) -> int:
        """Payouts for stays completed long enough ago are written; then those due whose host
        can be paid are claimed (committed), and each transfer asked for and recorded on its
        own: see services/payouts.py."""
        policy = self.payout_policy
        gateway = payouts.payout_gateway(self.gateways)
        created = await self.database.transaction(
            partial(
                payouts.create_due,
                now=now,
                policy=policy,
                unit_of=payouts.payout_unit_of(gateway),
            )
        )
        if gateway is None:  # written, and kept PENDING until payouts are configured
            return created
        calls = await self.database.transaction(partial(payouts.claim_due, now=now, policy=policy))
        for call in calls:
            try:
                await payouts.send(
                    self.database.transaction, gateway, call, clock=self.clock, policy=policy
                )
            except Exception:
                log.exception("payout %s: not recorded; asked again later", call.payout_id)
        return created + len(calls)

    async def check_waiting(self, now: datetime) -> int:
        """Payments the guest completes with the provider, whose word has not come: the
        provider is asked where each stands, and the answer applied as its webhook would be."""
        lookups = {
            name: gateway
            for name, gateway in self.gateways.by_provider.items()
            if isinstance(gateway, PaymentLookup)
        }
        if not lookups:
            return 0
        waiting = await self.database.transaction(
            partial(payments.claim_waiting, providers=list(lookups), now=now)
        )
        for payment in waiting:
            try:
                report = await lookups[payment.provider].look_up(payment.reference)
                call = await self.database.transaction(
                    partial(
                        checkout.provider_says,
                        payment_id=payment.payment_id,
                        report=report,
                        now=self.clock(),
                        rules=self.rules,
                    )
                )
            except Exception:
                log.exception("payment %s: not checked; asked again later", payment.payment_id)
                continue
            if call is not None:
                await self.settle(call)
        return len(waiting)

    async def settle(self, call: ProviderCall) -> None:
        """Asks the provider and applies its answer; one that does not come is asked for again
        by a later pass (the movement stays REQUESTED)."""
        try:
            await checkout.settle(self.database.transaction, self.gateways, call, clock=self.clock)
        except DomainError as refusal:  # declined, or nights taken: recorded, nobody to tell
            log.info("payment operation %s: %s", call.operation_id, refusal.message)
        except Exception:
            log.exception("payment operation %s: not settled; asked again later", call.operation_id)

    async def claim(self) -> list[int]:
        """Claims a batch of due events for one lease; answers their ids."""
        return await self.database.transaction(partial(self._claim, now=self.clock()))

    async def _claim(self, session: AsyncSession, *, now: datetime) -> list[int]:
        waiting = (
            OutboxEvent.processed_at.is_(None),
            OutboxEvent.parked_at.is_(None),
            OutboxEvent.locked_until.is_(None) | (OutboxEvent.locked_until < now),
        )
        # An event whose every claim ended with its worker dead (it crashes the process,
        # say) never reaches the failure path: it is parked here instead.
        await session.execute(
            update(OutboxEvent)
            .where(*waiting, OutboxEvent.attempts >= self.config.max_attempts)
            .values(
                parked_at=now,
                last_error=func.coalesce(
                    OutboxEvent.last_error, "its worker died while handling it"
                ),
            )
        )
        due = (
            select(OutboxEvent.id)
            .where(*waiting, OutboxEvent.available_at <= now)
            .order_by(OutboxEvent.id)
            .limit(self.config.batch_size)
            .with_for_update(skip_locked=True)
        )
        ids = list(await session.scalars(due))
        if ids:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_(ids))
                .values(
                    locked_until=now + self.config.lease,
                    attempts=OutboxEvent.attempts + 1,
                )
            )
        return ids

    async def handle(self, event_id: int) -> None:
        try:
            failures = await self._run_handlers(event_id)
        except Exception as error:
            log.exception("event %s failed", event_id)
            self._count_failure("event")
            await self._failed(event_id, error)
            return
        if failures:
            self._count_failure("event")
            await self._failed(event_id, next(iter(failures.values())), failures)

    def _count_failure(self, stage: str) -> None:
        if self.metrics is not None:
            self.metrics.worker_failed(stage)

    async def _run_handlers(self, event_id: int) -> dict[str, Exception]:
        """Runs each handler of the event not yet done, each on its own, and marks the event
        processed once all are; answers the errors of those that failed, by name. Raises when
        no event class or no handler knows the event's kind."""
        async with self.database.read_session() as session:
            row = await session.get(OutboxEvent, event_id)
        if row is None or row.processed_at is not None:
            return {}
        event = decode(row.kind, row.payload)
        failures: dict[str, Exception] = {}
        for name, handler in self.handlers.of(row.kind).items():
            try:
                await self.database.transaction(
                    partial(self._deliver, event_id=event_id, event=event, name=name, run=handler)
                )
            except Exception as error:
                log.exception("handler %s of event %s failed", name, event_id)
                self._count_failure("handler")
                failures[name] = error
        if not failures:
            await self.database.transaction(partial(self._processed, event_id=event_id))
        return failures

    async def _deliver(
        self,
        session: AsyncSession,
        *,
        event_id: int,
        event: Event,
        name: str,
        run: Handler[Any],
    ) -> None:
        # Locked again: a worker whose lease lapsed while it still runs finishes first, and
        # this one then finds the handler done.
        locked = await session.scalar(
            select(OutboxEvent.id)
            .where(OutboxEvent.id == event_id, OutboxEvent.processed_at.is_(None))
            .with_for_update()
        )
        if locked is None:
            return
        delivery = await session.get(OutboxDelivery, (event_id, name))
        if delivery is not None and delivery.processed_at is not None:
            return
        context = HandlerContext(
            event_id,
            self.mailer,
            self.frontend_url,
            now=self.clock(),
            texter=self.texter,
            cipher=self.cipher,
            pubsub=self.pubsub,
        )
        await run(session, event, context)
        await _record(session, event_id, name, processed_at=self.clock())

    async def _processed(self, session: AsyncSession, *, event_id: int) -> None:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id, OutboxEvent.processed_at.is_(None))
            .values(processed_at=self.clock(), locked_until=None)
        )

    async def _failed(
        self,
        event_id: int,
        error: Exception,
        by_handler: Mapping[str, Exception] | None = None,
    ) -> None:
        """Records why the event failed (and each failing handler's error), and when to try it
        again, or parks it."""

        async def record(session: AsyncSession) -> None:
            event = await session.get(OutboxEvent, event_id, with_for_update=True)
            if event is None or event.processed_at is not None:
                return
            for name, handler_error in (by_handler or {}).items():
                await _record(session, event_id, name, last_error=_described(handler_error))
            event.last_error = _described(error)
            event.locked_until = None
            if event.attempts >= self.config.max_attempts:
                event.parked_at = self.clock()
                log.error("event %s parked after %s attempts", event_id, event.attempts)
            else:
                event.available_at = self.clock() + backoff(event.attempts)

        await self.database.transaction(record)


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2_000]


async def _record(
    session: AsyncSession,
    event_id: int,
    handler: str,
    *,
    processed_at: datetime | None = None,
    last_error: str | None = None,
) -> None:
    """Counts one run of a handler: done at ``processed_at``, or failed with ``last_error``."""
    statement = insert(OutboxDelivery).values(
        event_id=event_id,
        handler=handler,
        attempts=1,
        processed_at=processed_at,
        last_error=last_error,
    )
    outcome = {"processed_at": processed_at} if processed_at else {"last_error": last_error}
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[OutboxDelivery.event_id, OutboxDelivery.handler],
            set_={"attempts": OutboxDelivery.attempts + 1, **outcome},
        )
    )
