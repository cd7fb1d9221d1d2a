"""Rate limits on sign-in and friends: per account, per client address, per operation."""

import uuid

import httpx

from app.http import create_app
from db.database import Database
from gateways.ratelimit import RateLimiter
from tests.accounts_helpers import LOGIN, PASSWORD, register, unique_email
from tests.helpers import gql, http_client, make_settings, running


async def test_forty_wrong_logins_for_one_account_are_rate_limited(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    codes = []
    for _ in range(40):
        body = await gql(client, LOGIN, {"email": email, "password": "not the password"})
        codes.append(body["errors"][0]["extensions"]["code"])
    assert codes[:10] == ["UNAUTHENTICATED"] * 10
    assert codes[10:] == ["RATE_LIMITED"] * 30

    limited = await gql(client, LOGIN, {"email": email, "password": PASSWORD})
    [error] = limited["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 60


async def test_aliased_logins_in_one_document_each_count(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    await register(client, email=email)
    aliases = " ".join(
        f'a{i}: login(email: "{email}", password: "{PASSWORD}") {{ accessToken }}'
        for i in range(15)
    )
    body = await gql(client, "mutation { " + aliases + " }")
    # Mutations run one after another; the eleventh is over the limit of ten a minute
    # (and, AuthPayload being non-null, its error ends the document there).
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["path"] == ["a10"]


async def test_one_address_may_open_only_so_many_accounts_a_minute(database_url: str) -> None:
    settings = make_settings(database_url, auth_attempts_per_minute_per_ip=3)
    async with running(create_app(settings)) as app, http_client(app) as client:
        for _ in range(3):
            await register(client)
        body = await gql(
            client,
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            {
                "i": {
                    "email": unique_email(),
                    "password": PASSWORD,
                    "firstName": "A",
                    "lastName": "B",
                }
            },
        )
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def login_outcomes(
    database_url: str, forwarded_for: list[str], *, trusted_proxies: list[str]
) -> list[str]:
    """Tries one login per forwarded address; answers each outcome's code."""
    settings = make_settings(
        database_url, auth_attempts_per_minute_per_ip=1, trusted_proxies=trusted_proxies
    )
    codes = []
    async with running(create_app(settings)) as app, http_client(app) as client:
        prefix = uuid.uuid4().hex  # fresh counters in a shared Redis
        for address in forwarded_for:
            body = await gql(
                client,
                LOGIN,
                {"email": f"{prefix}@example.com", "password": "x"},
                headers={"X-Forwarded-For": address},
            )
            codes.append(body["errors"][0]["extensions"]["code"])
    return codes


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    database_url: str,
) -> None:
    # httpx's ASGI transport connects from 127.0.0.1.
    untrusted = await login_outcomes(database_url, ["10.0.0.1", "10.0.0.2"], trusted_proxies=[])
    assert untrusted == ["UNAUTHENTICATED", "RATE_LIMITED"]  # one address: the proxy's
    trusted = await login_outcomes(
        database_url, ["10.0.0.3", "10.0.0.4"], trusted_proxies=["127.0.0.1"]
    )
    assert trusted == ["UNAUTHENTICATED", "UNAUTHENTICATED"]  # two clients behind it


async def test_a_limiter_allows_the_limit_then_says_how_long_to_wait(
    limiter: RateLimiter,
) -> None:
    results = [await limiter.hit("k", limit=3, window_seconds=60) for _ in range(5)]
    assert results[:3] == [None, None, None]
    assert all(wait is not None and 1 <= wait <= 60 for wait in results[3:])
    assert await limiter.hit("another key", limit=3, window_seconds=60) is None
