"""Rate limits hold however the client spells the account or its address, and at any moment.

One account is one budget whatever the width, case, dots or spaces of its email; one client
is its address (for IPv6, its /64); and no 60 seconds ever let more than the limit through,
across a window's edge too. Time is a clock the test moves, never a sleep.
"""

import math
import random
import time

import httpx
import pytest

from app.http import create_app
from db.database import Database
from gateways.ratelimit import MemoryRateLimiter, RateLimiter
from services.ratelimits import account_key, client_key, fold
from tests.accounts_helpers import LOGIN, PASSWORD, register
from tests.helpers import gql, http_client, make_settings, running

RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"

# Spellings that the account lookup takes for victim@example.com (they sign in as her).
SIGN_IN_SPELLINGS = [
    "victim@example.com",
    "VICTIM@EXAMPLE.COM",
    " Victim@Example.Com\t",
    "\u00a0victim@example.com\u3000",  # no-break and ideographic spaces around it
    "victim@ｅｘａｍｐｌｅ.com",  # fullwidth domain
    "victim@example。com",  # ideographic full stop
    "victim@example｡com",  # halfwidth ideographic full stop
    "victim@example．com",  # fullwidth full stop
    "victim@ＥＸＡＭＰＬＥ．ＣＯＭ",
    "ViCtIm@eｘAmPｌe。CoM",
    "victim@examp\u217ce.\u216dom",  # roman numerals fifty and one hundred: NFKC l and C
]
# Spellings the lookup does not take for her (compatibility forms of the local part, an @
# that is not one) but that only someone aiming at her would type: her budget too.
LOOKALIKE_SPELLINGS = [
    "ｖｉｃｔｉｍ@example.com",  # fullwidth local part
    "ＶＩＣＴＩＭ@ｅｘａｍｐｌｅ。ｃｏｍ",
    "vｉctim@example.com",
    "victim\uff20example.com",  # fullwidth @: not an address at all
]


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


async def test_every_spelling_of_an_account_shares_one_budget(
    client: httpx.AsyncClient, database: Database
) -> None:
    await register(client, email="victim@example.com")
    # Five spellings sign in (they are her account), five more guess wrong: ten, the limit.
    for email in SIGN_IN_SPELLINGS[:5]:
        body = await gql(client, LOGIN, {"email": email, "password": PASSWORD})
        assert "errors" not in body, (email, body)
    for email in SIGN_IN_SPELLINGS[5:10]:
        body = await gql(client, LOGIN, {"email": email, "password": "not the password"})
        assert error_code(body) == "UNAUTHENTICATED", email
    # No spelling, with the right password, gets a fresh budget.
    for email in SIGN_IN_SPELLINGS + LOOKALIKE_SPELLINGS:
        body = await gql(client, LOGIN, {"email": email, "password": PASSWORD})
        assert error_code(body) == "RATE_LIMITED", (email, body)
        assert 1 <= body["errors"][0]["extensions"]["retryAfter"] <= 60


async def test_every_spelling_shares_the_password_reset_budget(
    client: httpx.AsyncClient, database: Database
) -> None:
    await register(client, email="victim@example.com")
    spellings = SIGN_IN_SPELLINGS + LOOKALIKE_SPELLINGS
    answers = [await gql(client, RESET, {"e": email}) for email in spellings]
    assert answers[:10] == [{"data": {"requestPasswordReset": True}}] * 10
    assert [error_code(answer) for answer in answers[10:]] == ["RATE_LIMITED"] * 5


async def test_an_address_that_does_not_parse_is_limited_in_every_spelling(
    client: httpx.AsyncClient, database: Database
) -> None:
    spellings = [
        "not an address",
        "NOT AN ADDRESS",
        "ｎｏｔ ａｎ ａｄｄｒｅｓｓ",
        " Not An Address ",
    ]
    codes = [
        error_code(await gql(client, LOGIN, {"email": spellings[i % 4], "password": "x"}))
        for i in range(14)
    ]
    assert codes == ["UNAUTHENTICATED"] * 10 + ["RATE_LIMITED"] * 4


async def logins_from(addresses: list[str], database_url: str) -> list[str]:
    """One login per forwarded client address, one attempt allowed per client and minute."""
    settings = make_settings(
        database_url, auth_attempts_per_minute_per_ip=1, trusted_proxies=["127.0.0.1"]
    )
    codes = []
    async with running(create_app(settings)) as app, http_client(app) as client:
        for number, address in enumerate(addresses):
            variables = {"email": f"someone{number}@example.com", "password": "x"}
            body = await gql(client, LOGIN, variables, headers={"X-Forwarded-For": address})
            codes.append(error_code(body))
    return codes


async def test_a_client_is_its_address_however_written_and_its_ipv6_slash_64(
    database_url: str,
) -> None:
    one_subscriber = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::7", "2001:0DB8:0001:0002::1"]
    assert (
        await logins_from(one_subscriber, database_url)
        == ["UNAUTHENTICATED"] + ["RATE_LIMITED"] * 2
    )
    assert await logins_from(["10.1.2.3", "::ffff:10.1.2.3"], database_url) == [
        "UNAUTHENTICATED",
        "RATE_LIMITED",
    ]
    neighbours = ["2001:db8:1:3::1", "2001:db8:1:4::1"]  # other /64s: other subscribers
    assert await logins_from(neighbours, database_url) == ["UNAUTHENTICATED"] * 2


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


def test_keys_fold_spellings_and_keep_accounts_apart() -> None:
    keys = {account_key(email) for email in SIGN_IN_SPELLINGS + LOOKALIKE_SPELLINGS}
    assert len(keys) == 1
    assert account_key("victim2@example.com") not in keys
    assert account_key("victim@example.org") not in keys
    assert fold("ＭＡßＥ") == fold("masse") == fold(fold("MASSE"))
    assert client_key("2001:db8::1") == client_key("[2001:0db8:0:0:1::9]")
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("not an ip") == client_key("NOT AN IP")
