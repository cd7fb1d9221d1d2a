"""Live delivery between processes: a message published on a channel reaches whoever, in any
process, listens to that channel at that moment. Redis pub/sub when configured (every replica and
every worker share it), in process otherwise.

Delivery is at most once, and only to current listeners: the durable record is the database
(notifications, messages, bookings), where a client that was away reads what it missed. So an
outage of Redis loses live messages, never data: a publish while Redis is out of reach is
dropped (the outage is noted), and each process listens again, with backoff, until it returns.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.outages import REDIS, keep_connecting, outages

log = logging.getLogger("roost.pubsub")

# Messages a listener may fall behind by before the oldest are dropped: a client that reads this
# slowly is told of the newest, and finds the rest in the database.
LISTENER_QUEUE = 256


class Listener:
    """One subscriber's messages on one channel, in the order published."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(LISTENER_QUEUE)
        self._lagged = False

    def put(self, message: bytes) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            if not self._lagged:
                self._lagged = True
                log.warning("a live listener fell behind; its oldest messages are dropped")
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self._queue.get()


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Listener]:
        """Listening on ``channel`` from the context's start to its end."""
        ...

    def listeners(self, channel: str) -> int:
        """How many in this process listen on ``channel`` now."""
        ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Listeners:
    """This process's listeners, by channel."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Listener]] = {}

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Listener]:
        listener = Listener(channel)
        self._by_channel.setdefault(channel, set()).add(listener)
        try:
            yield listener
        finally:
            listeners = self._by_channel[channel]
            listeners.discard(listener)
            if not listeners:
                del self._by_channel[channel]

    def deliver(self, channel: str, message: bytes) -> None:
        for listener in self._by_channel.get(channel, ()):
            listener.put(message)

    def count(self, channel: str) -> int:
        return len(self._by_channel.get(channel, ()))


class LocalPubSub:
    """One process: what it publishes reaches its own listeners only."""

    def __init__(self) -> None:
        self._listeners = _Listeners()

    async def publish(self, channel: str, message: bytes) -> None:
        self._listeners.deliver(channel, message)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Listener]:
        return self._listeners.subscribe(channel)

    def listeners(self, channel: str) -> int:
        return self._listeners.count(channel)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class RedisPubSub:
    """Every process publishes to Redis and hears every channel under ``prefix`` on one
    connection, handing each message to its own listeners. (One pattern for all: no
    subscribe and unsubscribe per listener, at the cost of each process hearing every live
    message, which at Roost's volume is a few per booking.)"""

    def __init__(self, redis: Redis, *, prefix: str, max_backoff_seconds: float = 5.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_backoff = max_backoff_seconds
        self._listeners = _Listeners()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.listening = asyncio.Event()
        """Set while this process hears Redis (tests wait for it)."""

    async def publish(self, channel: str, message: bytes) -> None:
        try:
            await self._redis.publish(self._prefix + channel, message)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            outages.failed(REDIS, error)
            return
        outages.recovered(REDIS)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Listener]:
        return self._listeners.subscribe(channel)

    def listeners(self, channel: str) -> int:
        return self._listeners.count(channel)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="live-pubsub")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def _run(self) -> None:
        await keep_connecting(
            self._listen,
            stopping=self._stopping,
            name="listening for live updates",
            max_backoff_seconds=self._max_backoff,
        )

    async def _listen(self) -> None:
        connection: RedisConnection = self._redis.pubsub()
        try:
            await connection.psubscribe(self._prefix + "*")
            self.listening.set()
            outages.recovered(REDIS)
            while not self._stopping.is_set():
                message = await connection.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "pmessage":
                    continue
                channel = message["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode()
                data = message["data"]
                self._listeners.deliver(
                    channel.removeprefix(self._prefix),
                    data if isinstance(data, bytes) else str(data).encode(),
                )
        finally:
            self.listening.clear()
            try:
                await asyncio.wait_for(connection.aclose(), timeout=2)  # type: ignore[no-untyped-call]
            except Exception:  # already broken: nothing left to close politely
                log.debug("closing the pub/sub connection failed", exc_info=True)
