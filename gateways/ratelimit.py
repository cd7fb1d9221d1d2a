"""Fixed-window rate limit counters: in Redis when configured, in process otherwise."""

import math
import time
from typing import Protocol

from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Counts one attempt; answers the seconds to wait when ``key`` is over ``limit``."""
        ...


def _window(window_seconds: int, now: float) -> tuple[int, int]:
    index = int(now // window_seconds)
    retry_after = max(1, math.ceil((index + 1) * window_seconds - now))
    return index, retry_after


class MemoryRateLimiter:
    """One process's counters: right for a single `roost serve`, not for replicas."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        index, retry_after = _window(window_seconds, time.time())
        if len(self._counts) >= self._max_keys:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= index}
        count = self._counts.get((key, index), 0) + 1
        self._counts[(key, index)] = count
        return retry_after if count > limit else None


class RedisRateLimiter:
    """Counters shared by every replica."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        index, retry_after = _window(window_seconds, time.time())
        redis_key = f"{self._prefix}{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds + 1)
            count, _ = await pipe.execute()
        return retry_after if count > limit else None
