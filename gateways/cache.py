"""A small key-value cache with expiry: Redis when configured, in process otherwise."""

import time
from collections import OrderedDict
from typing import Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.outages import REDIS, outages


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl_seconds: int) -> None: ...


class MemoryCache:
    """Least recently used entries go first once ``max_entries`` is reached."""

    def __init__(self, *, max_entries: int = 2_048) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, *, ttl_seconds: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class RedisCache:
    """Shared by every replica. While Redis is out of reach every read is a miss and every
    write is dropped: a cache never fails the request it was meant to speed up."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisConnectionError, RedisTimeoutError) as error:
            outages.failed(REDIS, error)
            return None
        outages.recovered(REDIS)
        # The app's client leaves responses undecoded (no decode_responses): bytes.
        return cast(bytes | None, value)

    async def set(self, key: str, value: bytes, *, ttl_seconds: int) -> None:
        try:
            await self._redis.set(self._prefix + key, value, ex=ttl_seconds)
        except (RedisConnectionError, RedisTimeoutError) as error:
            outages.failed(REDIS, error)
