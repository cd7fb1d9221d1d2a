"""Rate limits hold at any moment: no 60 seconds ever let more than the limit through, across
a window's edge too. Time is a clock the test moves, never a sleep.
"""

import math
import os
import random
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from db.database import Database
from gateways.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.accounts_helpers import LOGIN, PASSWORD, register
from tests.conftest import gql


def error_code(body: dict) -> str | None:
    """The error's code; None for an answer without errors (a login that went through)."""
    return body["errors"][0]["extensions"]["code"] if "errors" in body else None


class FrozenClock:
    """``time.time`` as the test sets it: the clock every limiter here reads."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock(time.time())
    monkeypatch.setattr(time, "time", frozen)
    return frozen


async def test_a_burst_across_a_minute_boundary_gets_only_the_limit(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    await register(client, email="victim@example.com")
    edge = math.ceil(clock.now / 60) * 60 + 60  # where a fixed one-minute window would end

    async def attempts(at: float, count: int) -> list[str]:
        clock.now = at
        variables = {"email": "victim@example.com", "password": "not the password"}
        return [error_code(await gql(client, LOGIN, variables)) for _ in range(count)]

    assert await attempts(edge - 1, 10) == ["UNAUTHENTICATED"] * 10
    # Two seconds later, in what a fixed window calls a new minute: still the same 60 s.
    clock.now = edge + 1
    body = await gql(client, LOGIN, {"email": "victim@example.com", "password": PASSWORD})
    assert error_code(body) == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["retryAfter"] == 58
    assert await attempts(edge + 30, 5) == ["RATE_LIMITED"] * 5
    # Once the first attempts are a minute old, the account may try again.
    clock.now = edge + 59.5
    body = await gql(client, LOGIN, {"email": "victim@example.com", "password": PASSWORD})
    assert "errors" not in body, body


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    redis = Redis.from_url(url)
    yield RedisRateLimiter(redis, prefix=f"roost-test:{uuid.uuid4().hex}:")
    await redis.aclose()


async def test_no_sixty_seconds_ever_let_more_than_the_limit_through(
    limiter: RateLimiter, clock: FrozenClock
) -> None:
    rng = random.Random(9)  # noqa: S311 (attack timings, not secrets)
    allowed: list[float] = []
    refused: list[float] = []
    for _ in range(600):  # an attacker over twenty minutes, in bursts and trickles
        clock.now += rng.choice([0.01, 0.05, 0.5, 2.0, 7.0])
        wait = await limiter.hit("k", limit=10, window_seconds=60)
        (allowed if wait is None else refused).append(clock.now)

    def allowed_within(start: float) -> int:
        return sum(1 for t in allowed if start <= t <= start + 60)

    assert max(allowed_within(t) for t in allowed) == 10
    # ...and the limit is a budget, not a lockout: refused only while the last 60 s are full.
    assert refused and all(allowed_within(t - 60) == 10 for t in refused)


async def test_the_in_process_limiter_forgets_only_idle_keys(clock: FrozenClock) -> None:
    limiter = MemoryRateLimiter(max_keys=5)
    clock.now = 1_800_000_000.0
    waits = [await limiter.hit("victim", limit=3, window_seconds=60) for _ in range(4)]
    assert waits[:3] == [None] * 3 and waits[3] == 60
    for number in range(50):  # a flood of fresh keys must not wash her window away
        clock.now += 0.125
        await limiter.hit(f"flood {number}", limit=3, window_seconds=60)
    assert await limiter.hit("victim", limit=3, window_seconds=60) == 54
    clock.now += 60
    assert await limiter.hit("victim", limit=3, window_seconds=60) is None
