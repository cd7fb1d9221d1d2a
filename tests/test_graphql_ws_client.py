"""Subscriptions through the graphql-ws npm client frontends use (tests/js/subscribe.mjs under
node), against Roost under a real uvicorn: a browser cannot set headers on a websocket, so the
sign-in travels in connectionParams; a connection ends with its access token plus the grace
period, and the client carries on only by reconnecting with a fresh token."""

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.database import Database
from tests.booking_helpers import Place, a_place, booked, pay
from tests.helpers import gql
from tests.js_helpers import JS, node_with_modules
from tests.live_helpers import Live, live_roost

GRACE = 0.5
SLACK = 2.0
NOTIFICATIONS = "subscription { notifications { id kind booking { id status } } }"


@pytest.fixture(scope="session")
def node() -> str:
    """node, with tests/js's modules installed as package-lock.json pins them."""
    return node_with_modules()


class Client:
    """A running subscribe.mjs: its events (one JSON object a line) as they come."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.events: list[dict[str, Any]] = []

    async def next_event(self, within: float = 5) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=within)
        assert line, f"the client exited: {self.stderr.read_text()}"
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        return event

    async def until(self, kind: str, within: float = 5) -> dict[str, Any]:
        """The next event of ``kind``, the ones before it kept in ``events``."""
        async with asyncio.timeout(within):
            while (event := await self.next_event())["event"] != kind:
                pass
        return event

    async def until_exit(self, within: float = 5) -> list[dict[str, Any]]:
        """Every event up to the client's own exit."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while line := await self.process.stdout.readline():
                self.events.append(json.loads(line))
            assert await self.process.wait() == 0, self.stderr.read_text()
        return self.events

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == kind]


@asynccontextmanager
async def subscribed(
    node: str,
    live: Live,
    tmp_path: Path,
    document: str,
    token_file: Path | None = None,
) -> AsyncIterator[Client]:
    env = {**os.environ}
    if token_file is not None:
        env["ROOST_TOKEN_FILE"] = str(token_file)
    stderr = tmp_path / f"node-{time.monotonic_ns()}.stderr"
    with stderr.open("w") as errors:
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS / "subscribe.mjs"),
            live.ws_url,
            document,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    try:
        yield Client(process, stderr)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def hand(token_file: Path, token: str) -> None:
    """What connectionParams reads next time, written whole (never half a token)."""
    unfinished = token_file.with_suffix(".new")
    unfinished.write_text(token)
    unfinished.replace(token_file)


@pytest.fixture
async def live(database_url: str, database: Database) -> AsyncIterator[Live]:
    async with live_roost(database_url, websocket_token_grace_seconds=GRACE) as started:
        yield started


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "token"


async def host_id(client: httpx.AsyncClient, place: Place) -> int:
    me = await gql(client, "{ me { id } }", headers=place.as_host)
    return int(base64.b64decode(me["data"]["me"]["id"]).decode().split(":")[1])


async def test_a_host_signed_in_by_connection_params_hears_of_a_request_within_a_second(
    node: str, live: Live, client: httpx.AsyncClient, tmp_path: Path, token_file: Path
) -> None:
    place = await a_place(client, instantBook=False)
    hand(token_file, place.host)
    async with subscribed(node, live, tmp_path, NOTIFICATIONS, token_file) as host:
        await host.until("connected")
        await live.until_listening(f"notifications:{await host_id(client, place)}")
        booking = await booked(client, place, 5, 8)
        await pay(client, place, booking["id"])
        requested_at = time.monotonic()
        heard = await host.until("next", within=1)
        assert time.monotonic() - requested_at < 1
        notification = heard["payload"]["data"]["notifications"]
        assert notification["kind"] == "BOOKING_REQUESTED"
        assert notification["booking"] == {"id": booking["id"], "status": "PENDING"}
        assert "errors" not in heard["payload"]
    assert [event["call"] for event in host.of("connectionParams")] == [1]


async def test_without_connection_params_a_subscription_is_refused(
    node: str, live: Live, tmp_path: Path
) -> None:
    async with subscribed(node, live, tmp_path, NOTIFICATIONS) as anonymous:
        events = await anonymous.until_exit()
    [refusal] = [event for event in events if event["event"] in ("next", "error")]
    errors = refusal.get("errors") or refusal["payload"]["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["UNAUTHENTICATED"]
    assert anonymous.of("closed") == []  # refused, not thrown out


async def test_a_bad_token_closes_with_4401_and_the_client_gives_up(
    node: str, live: Live, tmp_path: Path, token_file: Path
) -> None:
    hand(token_file, "not-a-token")
    async with subscribed(node, live, tmp_path, NOTIFICATIONS, token_file) as client:
        await client.until_exit()
    assert [event["code"] for event in client.of("closed")] == [4401]
    assert [event["code"] for event in client.of("error")] == [4401]
    assert len(client.of("connectionParams")) == 1  # no second try
    assert client.of("connected") == []


def token_expiring_in(live: Live, place: Place, seconds: float) -> tuple[str, float]:
    """A token of the host's session that expires ``seconds`` from now (to the second, as
    tokens say it), and when it expires."""
    tokens = live.app.state.services.session_policy.access_tokens
    claims = tokens.decode(place.host)
    issued = datetime.now(UTC) - tokens.lifetime + timedelta(seconds=seconds)
    token = tokens.issue(claims.user_id, claims.roles, session_id=claims.session_id, now=issued)
    return token, tokens.decode(token).expires_at


async def test_an_expiring_token_is_replaced_by_reconnecting_with_fresh_connection_params(
    node: str, live: Live, client: httpx.AsyncClient, tmp_path: Path, token_file: Path
) -> None:
    place = await a_place(client, instantBook=False)
    channel = f"notifications:{await host_id(client, place)}"
    short, expires_at = token_expiring_in(live, place, 2)
    hand(token_file, short)
    async with subscribed(node, live, tmp_path, NOTIFICATIONS, token_file) as host:
        await host.until("connected")
        await live.until_listening(channel)
        # What connectionParams hands from now on: the app would have refreshed its token.
        hand(token_file, token_expiring_in(live, place, 60)[0])
        closed = await host.until("closed", within=6)
        assert closed["code"] == 4403
        # Not before the grace is over; soon after it (SLACK: a loaded machine's scheduling).
        assert expires_at + GRACE - 0.05 <= closed["at"] <= expires_at + GRACE + SLACK
        assert host.of("next") == []
        assert (await host.until("connected"))["count"] == 2
        assert [event["call"] for event in host.of("connectionParams")] == [1, 2]
        # The client subscribed again by itself, on the new connection.
        await live.until_listening(channel)
        booking = await booked(client, place, 5, 8)
        await pay(client, place, booking["id"])
        heard = (await host.until("next", within=5))["payload"]["data"]["notifications"]
        assert heard["kind"] == "BOOKING_REQUESTED"
        assert heard["booking"]["id"] == booking["id"]


async def test_without_a_fresh_token_nothing_is_heard_past_the_tokens_lifetime_and_grace(
    node: str, live: Live, client: httpx.AsyncClient, tmp_path: Path, token_file: Path
) -> None:
    place = await a_place(client, instantBook=False)
    short, expires_at = token_expiring_in(live, place, 2)
    hand(token_file, short)
    async with subscribed(node, live, tmp_path, NOTIFICATIONS, token_file) as host:
        await host.until("connected")
        await live.until_listening(f"notifications:{await host_id(client, place)}")
        closed = await host.until("closed", within=6)
        assert closed["code"] == 4403
        assert closed["at"] <= expires_at + GRACE + SLACK
        # News made after the token's time is not heard: the reconnect with the same,
        # expired token is refused and the client stops.
        booking = await booked(client, place, 5, 8)
        await pay(client, place, booking["id"])
        await live.until_idle()
        events = await host.until_exit()
    assert [event["code"] for event in host.of("closed")] == [4403, 4401]
    assert [event["code"] for event in host.of("error")] == [4401]
    assert [event["call"] for event in host.of("connectionParams")] == [1, 2]
    assert [event["count"] for event in host.of("connected")] == [1]
    assert host.of("next") == [], events
