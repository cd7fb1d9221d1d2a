"""Moving-window rate limits: in Redis (the `limits` package) when configured, in process otherwise.

A moving window remembers when each allowed attempt happened, so no 60 seconds ever hold more
than the limit; fixed windows let twice the limit through across a window's edge.
"""

import math
import time
from collections import deque
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        """Counts one attempt; answers the seconds to wait when ``key`` is over ``limit``.

        An attempt refused is not counted: hammering does not push the wait further out."""
        ...


class MemoryRateLimiter:
    """One process's windows: right for a single `roost serve`, not for replicas.

    Per key, the times of the last ``limit`` attempts allowed. Not `limits`' memory storage:
    after every hit it rescans every key, one thread hop each (58% of a core at 200 hits a
    second over 100 keys, against 1% for this; bench/ratelimit.py)."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._logs: dict[tuple[str, int, int], deque[float]] = {}
        self._prune_at = max_keys
        self._max_keys = max_keys

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        if len(self._logs) >= self._prune_at:
            self._forget_idle(now)
        log = self._logs.setdefault((key, limit, window_seconds), deque(maxlen=limit))
        if len(log) == limit and log[0] >= now - window_seconds:
            return _wait(log[0] + window_seconds - now, window_seconds)
        log.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        self._logs = {
            slot: log for slot, log in self._logs.items() if log and log[-1] >= now - slot[2]
        }
        # Live keys beyond the bound: look again only once they have doubled (amortized O(1)).
        self._prune_at = max(self._max_keys, 2 * len(self._logs))


class RedisRateLimiter:
    """Windows shared by every replica, on the app's own Redis connection pool."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        # `limits` joins its prefix and the key with ":"; ours already ends with one.
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=prefix.removesuffix(":"),
            # Passed on to redis-py's client; `limits` types its options as scalars only.
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self._strategy = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        item = RateLimitItemPerSecond(limit, window_seconds)
        if await self._strategy.hit(item, key):
            return None
        # Only a refusal pays for this second round trip: when the oldest attempt leaves.
        stats = await self._strategy.get_window_stats(item, key)
        return _wait(stats.reset_time - time.time(), window_seconds)


def _wait(seconds: float, window_seconds: int) -> int:
    return min(window_seconds, max(1, math.ceil(seconds)))
