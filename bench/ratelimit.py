"""Cost of one rate limiter hit: the moving window (`limits`) against the old fixed window.

    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/ratelimit.py [--hits 20000]

Runs hits one after another (latency, not throughput) under fresh keys, so every hit is
allowed (limit 10, as for an account), then hits on one full key (refused: the limiter also
reads the window to say how long to wait). The reference is the old limiter's own Redis work,
INCR and EXPIRE in one MULTI pipeline, and a PING: one bare round trip. In process, the old
dict counter against ours; then the CPU each in-process limiter burns at a steady 200 hits a
second over 100 keys, `limits`' own memory storage among them (why we do not use it).
"""

import argparse
import asyncio
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from gateways.ratelimit import MemoryRateLimiter, RedisRateLimiter


class OldRedisFixedWindow:
    """The limiter this one replaced, as it was."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        index = int(now // window_seconds)
        retry_after = max(1, math.ceil((index + 1) * window_seconds - now))
        redis_key = f"{self._prefix}{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds + 1)
            count, _ = await pipe.execute()
        return retry_after if count > limit else None


class LimitsMemoryMovingWindow:
    def __init__(self) -> None:
        self._strategy = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        allowed = await self._strategy.hit(RateLimitItemPerSecond(limit, window_seconds), key)
        return None if allowed else 1


class OldMemoryFixedWindow:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> int | None:
        index = int(time.time() // window_seconds)
        count = self._counts.get((key, index), 0) + 1
        self._counts[(key, index)] = count
        return 1 if count > limit else None


async def per_call(calls: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Microseconds per call, the best of three runs."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for number in range(calls):
            await call(number)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


async def measure(name: str, limiter: object, hits: int, reference: float) -> None:
    run = uuid.uuid4().hex
    allowed = await per_call(hits, lambda n: limiter.hit(f"{run}:{n}", limit=10, window_seconds=60))
    full = f"{run}:full"
    for _ in range(10):
        await limiter.hit(full, limit=10, window_seconds=60)
    refused = await per_call(hits, lambda n: limiter.hit(full, limit=10, window_seconds=60))
    print(
        f"{name:<34} allowed {allowed:7.1f} µs ({allowed / reference:4.2f}x)"
        f"   refused {refused:7.1f} µs ({refused / reference:4.2f}x)"
    )


async def share_of_a_core(limiter: object, *, keys: int = 100, seconds: float = 3) -> float:
    """CPU time over wall time while hits arrive 200 a second, as requests would."""
    for number in range(keys):
        await limiter.hit(f"k{number}", limit=10, window_seconds=60)
    wall, cpu, number = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - wall < seconds:
        await limiter.hit(f"k{number % keys}", limit=10, window_seconds=60)
        number += 1
        await asyncio.sleep(0.005)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=20_000)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if url:
        redis = Redis.from_url(url)
        prefix = f"roost-bench:{uuid.uuid4().hex}:"
        ping = await per_call(args.hits, lambda _: redis.ping())
        print(f"{'redis PING (one round trip)':<34} {ping:7.1f} µs (1.00x)")
        await measure(
            "redis, old fixed window", OldRedisFixedWindow(redis, prefix=prefix), args.hits, ping
        )
        await measure(
            "redis, moving window (limits)", RedisRateLimiter(redis, prefix=prefix), args.hits, ping
        )
        keys = [key async for key in redis.scan_iter(f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        await redis.aclose()
    old = OldMemoryFixedWindow()
    empty = await per_call(args.hits, lambda _: asyncio.sleep(0))
    print(f"{'in process: an await of sleep(0)':<34} {empty:7.1f} µs (1.00x)")
    await measure("in process, old fixed window", old, args.hits, empty)
    await measure("in process, moving window (ours)", MemoryRateLimiter(), args.hits, empty)
    for name, limiter in [
        ("old fixed window", OldMemoryFixedWindow()),
        ("moving window (ours)", MemoryRateLimiter()),
        ("moving window (limits' memory)", LimitsMemoryMovingWindow()),
    ]:
        print(
            f"200 hits/s over 100 keys, {name:<31} {await share_of_a_core(limiter):4.0%} of a core"
        )


if __name__ == "__main__":
    asyncio.run(main())
