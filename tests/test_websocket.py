"""The websocket endpoint speaks graphql-transport-ws, over a real uvicorn on loopback."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.http import create_app
from app.settings import Settings
from tests.test_serve import free_port


@pytest.fixture
async def live_url(settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn has no event to wait on)
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task


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
