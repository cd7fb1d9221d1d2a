"""PostgreSQL or Redis out of reach: SERVICE_UNAVAILABLE and 503, never a 500; logged once per
outage; and the next request after it comes back succeeds, without a restart.

The outage is a relay between the app and the real server, cut and restored by the test.
"""

import logging
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.http import create_app
from tests.accounts_helpers import LOGIN, ME, PASSWORD, bearer, register, unique_email
from tests.helpers import http_client, make_settings, running
from tests.relay import Relay
from tests.upload_helpers import image_bytes, upload

SEARCH = "{ searchListings { totalCount } }"


@pytest.fixture
async def relay(database_url: str) -> AsyncIterator[Relay]:
    relay = Relay.to_postgres(database_url)
    await relay.start()
    yield relay
    await relay.cut()


@pytest.fixture
async def app_behind(relay: Relay, database_url: str) -> AsyncIterator[Starlette]:
    settings = make_settings(relay.postgres_url(database_url), search_cache_seconds=30)
    async with running(create_app(settings)) as app:
        yield app


async def post(client: httpx.AsyncClient, query: str, variables: dict | None = None, **kw):
    return await client.post("/graphql", json={"query": query, "variables": variables}, **kw)


def codes(response: httpx.Response) -> set[str]:
    return {error["extensions"]["code"] for error in response.json().get("errors", [])}


async def test_a_database_outage_is_service_unavailable_and_passes(
    app_behind: Starlette, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    async with http_client(app_behind) as client:
        email = unique_email()
        token = (await register(client, email=email))["accessToken"]
        assert (await post(client, SEARCH)).status_code == 200

        await relay.cut()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                responses = [
                    await post(client, SEARCH),  # an anonymous search, through the cache
                    await post(client, ME, headers=bearer(token)),
                    await post(client, LOGIN, {"email": email, "password": PASSWORD}),
                    await post(client, '{ node(id: "VXNlcjox") { id } }'),
                    await client.get("/readyz"),
                    await upload(client, image_bytes(), token=token),
                ]
                for response in responses:
                    assert response.status_code == 503, response.text
                    assert "INTERNAL_SERVER_ERROR" not in response.text
                    if response.url.path == "/graphql":
                        assert codes(response) == {"SERVICE_UNAVAILABLE"}
                        assert response.json()["data"] is None or not any(
                            response.json()["data"].values()
                        )
                    else:
                        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        said = [r for r in caplog.records if r.name == "roost.outage"]
        assert [r.getMessage() for r in said] == [
            "the database is unreachable; requests that need it answer SERVICE_UNAVAILABLE"
        ]
        assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING]

        await relay.restore()
        with caplog.at_level(logging.INFO):
            search = await post(client, SEARCH)
            me = await post(client, ME, headers=bearer(token))
        assert search.status_code == 200 and search.json()["data"]["searchListings"] is not None
        assert me.status_code == 200 and me.json()["data"]["me"]["email"] == email
        assert (await client.get("/readyz")).status_code == 200
        assert "the database is reachable again" in [r.getMessage() for r in caplog.records]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis to cut off")
async def test_a_redis_outage_leaves_searches_working_and_refuses_sign_in_cleanly(
    database_url: str,
) -> None:
    relay = Relay.to_redis(os.environ["REDIS_URL"])
    await relay.start()
    settings = make_settings(database_url, redis_url=relay.redis_url(), search_cache_seconds=30)
    try:
        async with running(create_app(settings)) as app, http_client(app) as client:
            email = unique_email()
            await register(client, email=email)
            # The run's database may hold other tests' listings: the answer before the outage.
            before = (await post(client, SEARCH)).json()
            assert before["data"]["searchListings"]["totalCount"] >= 0, before
            await relay.cut()
            search = await post(client, SEARCH)  # the cache is skipped, not fatal
            assert search.status_code == 200
            assert search.json() == before
            # Sign-in needs its rate limits, which live in Redis.
            refused = await post(client, LOGIN, {"email": email, "password": PASSWORD})
            assert refused.status_code == 503
            assert codes(refused) == {"SERVICE_UNAVAILABLE"}
            assert (await client.get("/readyz")).status_code == 503
            await relay.restore()
            signed_in = await post(client, LOGIN, {"email": email, "password": PASSWORD})
            assert signed_in.status_code == 200 and "errors" not in signed_in.json()
    finally:
        await relay.cut()
