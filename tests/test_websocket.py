"""The websocket endpoint speaks graphql-transport-ws, over a real uvicorn on loopback."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.http import create_app
from app.settings import Settings
from tests.conftest import serving


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
