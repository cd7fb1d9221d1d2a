"""Which sign-in sessions have ended, known in every server process as they end.

An access token names its session (``sid``, the refresh-token family). A session ends when one of
its refresh tokens is revoked: a logout, a replayed refresh token, a password change or reset, a
suspension. A trigger on ``refresh_token`` (migration 0006) then sends the session id on the
channel ``roost_session_revoked`` as the revoking transaction commits.

Each process keeps one connection LISTENing on that channel and remembers the ids it hears for as
long as a token issued before the revocation can live, so asking is a dict lookup. The memory is
trusted only while it cannot have missed a notice: on (re)connecting it LISTENs first and then
loads the sessions ended within a token's lifetime, so a revocation committed in between is in
one or the other; and the connection must have answered within the last few seconds (a
heartbeat), which bounds what a silently broken network could hide. Otherwise (starting up, a
database outage, reconnecting) every question goes to the database.

A notice reaches the other processes a moment after the commit, not with it. So that no client
can outrun it, a request that ended a session calls ``settle`` before it answers: it sends a
marker on the channel and waits until every listening process has acknowledged it. PostgreSQL
delivers notices in commit order, so a process that heard the marker has heard the revocation.
"""

import asyncio
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from db.database import Database
from db.outages import note_if_unreachable
from db.raw import fetch

log = logging.getLogger("roost.revocations")

CHANNEL = "roost_session_revoked"
ACK_CHANNEL = "roost_session_heard"
# A listener is named roost-revocations once it listens and has loaded: ``settle`` waits for
# every connection of that name.
_CONNECTING = "roost-revocations-connecting"
_SYNC = "sync "
# The server drops a listener whose host vanished within half a minute, so ``settle`` stops
# waiting for it (heartbeats keep a live one from ever idling this long).
_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
# Clocks of the processes that issue and that check tokens may disagree by this much.
CLOCK_SKEW = timedelta(minutes=1)

IS_REVOKED = (
    "SELECT EXISTS (SELECT 1 FROM refresh_token WHERE family_id = $1 AND revoked_at IS NOT NULL)"
)
_RECENTLY_REVOKED = (
    "SELECT DISTINCT family_id FROM refresh_token WHERE revoked_at > now() - $1::interval"
)
# Sends a marker, and answers which processes listen (and so will acknowledge it).
_SEND_MARKER = """
SELECT pg_notify('roost_session_revoked', $1), ARRAY(
  SELECT pid FROM pg_stat_activity
  WHERE datname = current_database() AND application_name = 'roost-revocations'
)"""
_SEND_ACKS = "SELECT pg_notify('roost_session_heard', ack) FROM unnest($1::text[]) AS ack"


class _Marker:
    def __init__(self) -> None:
        self.expected: set[int] | None = None
        self.heard: set[int] = set()
        self.done = asyncio.Event()

    def check(self) -> None:
        if self.expected is not None and self.expected <= self.heard:
            self.done.set()


class RevokedSessions:
    def __init__(
        self,
        database: Database,
        *,
        token_lifetime: timedelta,
        heartbeat_seconds: float = 1.0,
        settle_timeout_seconds: float = 1.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._database = database
        self._keep = token_lifetime + CLOCK_SKEW
        self._heartbeat = heartbeat_seconds
        self._stale_after = 3 * heartbeat_seconds
        self._settle_timeout = settle_timeout_seconds
        self._max_backoff = max_backoff_seconds
        # Session id -> when it may be forgotten (monotonic seconds), oldest first.
        self._revoked: OrderedDict[uuid.UUID, float] = OrderedDict()
        self._connection: asyncpg.Connection | None = None
        self._heard_at = float("-inf")
        self._acks_due: list[str] = []
        self._markers: dict[str, _Marker] = {}
        self._watchers: list[Callable[[uuid.UUID], None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def trusted(self) -> bool:
        """Whether memory alone can answer: listening, loaded, and heard from lately."""
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed()
            and time.monotonic() - self._heard_at < self._stale_after
        )

    @property
    def listener_pid(self) -> int | None:
        """The server process of the listening connection, while there is one."""
        connection = self._connection
        return connection.get_server_pid() if connection is not None else None

    def on_revoked(self, watcher: Callable[[uuid.UUID], None]) -> None:
        """Calls ``watcher`` with each session id as its end is heard (open websockets close
        with it). An id may be told more than once: on reconnecting, the recent ones again."""
        self._watchers.append(watcher)

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        if self.trusted:
            return session_id in self._revoked
        rows = await fetch(self._database, IS_REVOKED, session_id)
        return bool(rows[0][0])

    async def settle(self) -> None:
        """Returns once every listening process has heard every revocation committed before
        the call (or after a second: a process that slow is close to trusting its memory no
        more, and the revocation is committed either way)."""
        if not self.trusted:
            return  # we could not hear the acknowledgements
        marker_id = uuid.uuid4().hex
        marker = self._markers[marker_id] = _Marker()
        try:
            async with asyncio.timeout(self._settle_timeout):
                rows = await fetch(self._database, _SEND_MARKER, _SYNC + marker_id)
                marker.expected = set(rows[0][1])
                marker.check()
                await marker.done.wait()
        except Exception:
            # The revocation is committed and announced either way: this only waited for it.
            missing = sorted((marker.expected or set()) - marker.heard)
            log.warning(
                "a revocation may not be known everywhere yet",
                exc_info=True,
                extra={"listeners_not_heard": missing},
            )
        finally:
            del self._markers[marker_id]

    def start(self) -> None:
        self._stopping = False
        self._wake.clear()
        self._task = asyncio.create_task(self._run(), name="revoked-sessions")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                if await self._listen():
                    backoff = 0.1
            except Exception as error:
                # An outage is logged once while it lasts; anything else each time.
                if not note_if_unreachable(error):
                    log.warning(
                        "cannot listen for ended sessions; asking the database", exc_info=True
                    )
            if self._stopping:
                break
            self._wake.clear()
            # Jitter keeps the processes of a fleet from reconnecting in step after an outage.
            delay = backoff * random.uniform(0.5, 1.0)  # noqa: S311
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, self._max_backoff)

    async def _listen(self) -> bool:
        """Listens until the connection fails or ``stop``; True if it got as far as loading."""
        self._wake.clear()
        self._acks_due.clear()
        connection = await self._database.dedicated_connection(_CONNECTING, _KEEPALIVES)
        loaded = False
        try:
            connection.add_termination_listener(lambda _: self._wake.set())
            await connection.add_listener(CHANNEL, self._on_notice)
            await connection.add_listener(ACK_CHANNEL, self._on_ack)
            # Listening first: a revocation committed from here on is announced to us.
            rows = await connection.fetch(_RECENTLY_REVOKED, self._keep, timeout=10)
            for row in rows:
                self._remember(row[0])
            await connection.execute("SET application_name = 'roost-revocations'")
            self._heard_at = time.monotonic()
            self._connection = connection
            loaded = True
            log.info("listening for ended sessions", extra={"ended_sessions": len(self._revoked)})
            await self._keep_listening(connection)
            if not self._stopping:
                log.warning("lost the connection listening for ended sessions; reconnecting")
        finally:
            self._connection = None
            if not connection.is_closed():
                try:
                    await asyncio.wait_for(connection.close(), timeout=2)
                except Exception:
                    connection.terminate()
        return loaded

    async def _keep_listening(self, connection: asyncpg.Connection) -> None:
        """Acknowledges markers and proves the connection alive, until it is lost or stopped."""
        next_beat = time.monotonic() + self._heartbeat
        while True:
            try:
                timeout = max(0.0, next_beat - time.monotonic())
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass
            if self._stopping or connection.is_closed():
                return
            self._wake.clear()
            acks, self._acks_due = self._acks_due, []
            if acks:  # a round trip, so a heartbeat too
                await connection.execute(_SEND_ACKS, acks, timeout=self._stale_after)
            elif time.monotonic() >= next_beat:
                await connection.fetchval("SELECT 1", timeout=self._stale_after)
            else:
                continue
            self._heard_at = time.monotonic()
            next_beat = self._heard_at + self._heartbeat
            self._forget_old()

    def _on_notice(
        self,
        connection: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
        pid: int,
        channel: str,
        notice: object,
    ) -> None:
        payload = str(notice)  # asyncpg hands NOTIFY payloads over as text
        if payload.startswith(_SYNC):
            # Everything committed before the marker has been heard: say so.
            marker_id = payload.removeprefix(_SYNC)
            self._acks_due.append(f"{marker_id} {connection.get_server_pid()}")
            self._wake.set()
            return
        try:
            session_id = uuid.UUID(payload)
        except ValueError:
            log.warning("ignored a malformed notice", extra={"payload": payload[:100]})
            return
        self._remember(session_id)

    def _on_ack(self, connection: object, pid: int, channel: str, payload: object) -> None:
        marker_id, _, listener = str(payload).partition(" ")
        marker = self._markers.get(marker_id)
        if marker is not None and listener.isdigit():
            marker.heard.add(int(listener))
            marker.check()

    def _remember(self, session_id: uuid.UUID) -> None:
        self._revoked[session_id] = time.monotonic() + self._keep.total_seconds()
        self._revoked.move_to_end(session_id)
        for watcher in self._watchers:
            try:
                watcher(session_id)
            except Exception:
                log.exception("a watcher of ended sessions failed")

    def _forget_old(self) -> None:
        """Drops sessions whose every access token has expired by now."""
        now = time.monotonic()
        while self._revoked and next(iter(self._revoked.values())) <= now:
            self._revoked.popitem(last=False)
