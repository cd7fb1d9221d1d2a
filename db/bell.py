"""A bell on a PostgreSQL channel: it rings in every listening process as soon as a transaction
that notified the channel commits. The worker waits on it for new outbox events (a trigger of
migration 0026 notifies ``roost_outbox``), so an event is handled within milliseconds of its
commit rather than at the next poll; polling stays as the fallback while the bell cannot listen.
"""

import asyncio

import asyncpg

from db.database import Database
from db.outages import keep_connecting

OUTBOX_CHANNEL = "roost_outbox"
# A listener whose network vanished is noticed within half a minute.
_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class Bell:
    def __init__(
        self, database: Database, channel: str, *, max_backoff_seconds: float = 10.0
    ) -> None:
        self._database = database
        self._channel = channel
        self._max_backoff = max_backoff_seconds
        self._rang = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def ring(self) -> None:
        self._rang.set()

    async def wait(self, at_most_seconds: float) -> None:
        """Returns when the bell rings (or has rung since the last wait), or after
        ``at_most_seconds``."""
        try:
            await asyncio.wait_for(self._rang.wait(), timeout=at_most_seconds)
        except TimeoutError:
            pass
        self._rang.clear()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"bell-{self._channel}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def _run(self) -> None:
        await keep_connecting(
            self._listen,
            stopping=self._stopping,
            name=f"listening on {self._channel}",
            max_backoff_seconds=self._max_backoff,
        )

    async def _listen(self) -> None:
        lost = asyncio.Event()
        connection = await self._database.dedicated_connection(
            f"roost-bell-{self._channel}", _KEEPALIVES
        )
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(self._channel, self._heard)
            self.listening.set()
            # Anything that committed while nobody listened is found by the first pass.
            self.ring()
            stopping = asyncio.create_task(self._stopping.wait())
            gone = asyncio.create_task(lost.wait())
            try:
                await asyncio.wait({stopping, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                gone.cancel()
        finally:
            self.listening.clear()
            if not connection.is_closed():
                try:
                    await asyncio.wait_for(connection.close(), timeout=2)
                except Exception:
                    connection.terminate()

    def _heard(
        self,
        connection: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
        pid: int,
        channel: str,
        payload: object,
    ) -> None:
        self.ring()
