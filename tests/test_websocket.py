"""The websocket endpoint speaks graphql-transport-ws, over a real uvicorn on loopback."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.http import create_app
from app.settings import Settings
from tests.helpers import MAX_BODY_BYTES, serving


@pytest.fixture
async def live_url(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as base_url:
        yield base_url.replace("http://", "ws://") + "/graphql"


async def test_graphql_transport_ws_handshake(live_url: str) -> None:
    async with connect(live_url, subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = await asyncio.wait_for(ws.recv(), timeout=5)
        assert isinstance(ack, str)  # a text frame, as clients expect
        assert json.loads(ack) == {"type": "connection_ack"}
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"type": "pong"}


async def test_a_websocket_without_the_protocol_is_closed(live_url: str) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(live_url, subprotocols=["graphql-ws"]) as ws:
            await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406  # "Subprotocol not acceptable"


SAME_EVERYWHERE = {
    "unauthenticated": "{ myTrips { totalCount } }",
    "bad input": "{ searchListings(first: 0) { totalCount } }",
    "too many aliases": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }",
    "syntax error": "{ node(id: ",
    "too many tokens": "{ " + "a " * 5_000 + "}",
    "too costly": "{ ...F0 } "
    + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    + " fragment F30 on Query { __typename }",
    "control character": '{ searchListings(filter: {location: "a\\u0000"}) { totalCount } }',
}


async def over_websocket(url: str, query: str) -> list[dict]:
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5))["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    if message["type"] == "error":
        return message["payload"]
    assert message["type"] == "next", message
    return message["payload"]["errors"]


@pytest.mark.parametrize("query", SAME_EVERYWHERE.values(), ids=SAME_EVERYWHERE.keys())
async def test_a_document_fails_the_same_way_over_http_and_the_websocket(
    live_url: str, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(live_url.replace("ws://", "http://"), json={"query": query})
    over_http = response.json()["errors"]
    with caplog.at_level(logging.ERROR):
        over_ws = await over_websocket(live_url, query)
    assert over_ws == over_http
    assert {error["extensions"]["code"] for error in over_ws} <= EXPECTED_CODES
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


EXPECTED_CODES = {
    "UNAUTHENTICATED",
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
}


async def test_a_websocket_message_over_the_body_limit_closes_the_connection(
    live_url: str,
) -> None:
    async with connect(live_url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await asyncio.wait_for(ws.recv(), timeout=5)
        query = "# " + "x" * MAX_BODY_BYTES + "\n{ __typename }"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big
