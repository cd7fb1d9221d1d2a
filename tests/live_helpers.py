"""Live tests' shared steps: Roost under a real uvicorn with its worker in process, and a
graphql-transport-ws client."""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.http import create_app
from db.raw import fetch
from gateways.pubsub import RedisPubSub
from tests.helpers import make_settings, serving

PROTOCOL = "graphql-transport-ws"
_ids = itertools.count(1)


@dataclass
class Live:
    app: Starlette
    http_url: str

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http://", "ws://") + "/graphql"

    async def until_listening(self, channel: str, count: int = 1) -> None:
        """Until ``count`` subscriptions in the server listen on ``channel``."""
        pubsub = self.app.state.services.pubsub
        async with asyncio.timeout(5):
            while pubsub.listeners(channel) < count:  # noqa: ASYNC110 (nothing to wait on)
                await asyncio.sleep(0.01)

    async def until_idle(self) -> None:
        """Until the worker has handled every outbox event that is due."""
        async with asyncio.timeout(5):
            while await fetch_value(self.app.state.database, _WAITING):  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def fetch_value(database: Any, query: str) -> Any:
    return (await fetch(database, query))[0][0]


_WAITING = (
    "SELECT count(*) FROM outbox_event "
    "WHERE processed_at IS NULL AND parked_at IS NULL AND available_at <= now()"
)


@asynccontextmanager
async def live_roost(database_url: str, **overrides: object) -> AsyncIterator[Live]:
    """Roost on a loopback port, its worker woken by the outbox bell (it would otherwise
    poll only every half minute: a test that passes in a second proves the bell)."""
    values: dict[str, object] = {"run_worker_in_process": True, "worker_poll_seconds": 30.0}
    values.update(overrides)
    app = create_app(make_settings(database_url, **values))
    async with serving(app) as url:
        pubsub = app.state.services.pubsub
        if isinstance(pubsub, RedisPubSub):
            await asyncio.wait_for(pubsub.listening.wait(), timeout=5)
        yield Live(app, url)


class Socket:
    """One graphql-transport-ws connection, acknowledged."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 5) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout=within))

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation_id = str(next(_ids))
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"type": "subscribe", "id": operation_id, "payload": payload})
        return operation_id

    async def next_data(self, operation_id: str, within: float = 5) -> dict[str, Any]:
        """The data of the operation's next result; fails on an error or another message."""
        message = await self.receive(within)
        assert message["id"] == operation_id, message
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]

    async def refused(self, operation_id: str) -> list[dict[str, Any]]:
        """The errors an operation was refused with (an ``error`` message, or a ``next`` with
        errors and then ``complete``)."""
        message = await self.receive()
        assert message["id"] == operation_id, message
        if message["type"] == "error":
            return message["payload"]
        assert message["type"] == "next" and message["payload"]["errors"], message
        assert await self.receive() == {"id": operation_id, "type": "complete"}
        return message["payload"]["errors"]

    async def closed_with(self, within: float = 5) -> int | None:
        """The close code the server closes with, reading past anything sent before."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


@asynccontextmanager
async def socket(
    url: str, token: str | None = None, *, payload: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[Socket]:
    """Connected and acknowledged, signed in with ``token`` in ``connection_init``."""
    async with connect(url, subprotocols=[PROTOCOL], **options) as ws:  # type: ignore[list-item]
        live = Socket(ws)
        init = dict(payload or {})
        if token is not None:
            init["authorization"] = f"Bearer {token}"
        await live.send({"type": "connection_init", "payload": init})
        ack = await live.receive()
        assert ack["type"] == "connection_ack", ack
        yield live


@asynccontextmanager
async def raw_socket(url: str, **options: Any) -> AsyncIterator[Socket]:
    """Connected, nothing sent yet."""
    async with connect(url, subprotocols=[PROTOCOL], **options) as ws:  # type: ignore[list-item]
        yield Socket(ws)
