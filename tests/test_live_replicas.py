"""Live delivery across processes and through a Redis outage: two server processes on loopback
share PostgreSQL and a Redis of the test's own; a booking made through one reaches a subscriber
on the other. Killing that Redis leaves a replica serving (the news is stored, only not pushed),
and delivery resumes when Redis returns."""

import asyncio
import base64
import os
import shutil
import socket as sockets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from db.database import Database
from tests.booking_helpers import a_place, booked, pay
from tests.helpers import free_port, gql
from tests.live_helpers import Live, live_roost, socket

ROOT = Path(__file__).parent.parent
NOTIFICATIONS = "subscription { notifications { kind booking { id } } }"
STORED = "{ notifications(first: 10) { edges { node { kind booking { id } } } } }"

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


class RedisServer:
    """A Redis of the test's own on a loopback port, to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
            + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                sockets.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Replica:
    """A Roost server process, as a deployment runs one."""

    def __init__(self, database_url: str, redis_url: str, *, prefix: str, worker: bool) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        data_dir = Path(tempfile.mkdtemp(prefix="roost-replica-"))
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ROOST_REDIS_PREFIX": prefix,
            "JWT_SECRET": "replica-secret-" + "x" * 40,
            "ROOST_FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
            "ROOST_RUN_WORKER_IN_PROCESS": "true" if worker else "false",
            "ROOST_DATA_DIR": str(data_dir),
            "ROOST_EMAIL_BACKEND": "file",
            "ROOST_LOG_LEVEL": "WARNING",
            # Cheap hashes, as in every test.
            "ROOST_ARGON2_TIME_COST": "1",
            "ROOST_ARGON2_MEMORY_KIB": "8192",
        }
        self.log = data_dir / "server.log"
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "uvicorn", "app.http:create_app", "--factory"]
            + ["--host", "127.0.0.1", "--port", str(port), "--ws", "websockets-sansio"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def replicas(database_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    """Two replicas sharing the database and Redis, started side by side; the first runs the
    worker, so the news is raised in a process other than the second's."""
    both = [
        Replica(database_url, redis_url, prefix="roost:", worker=True),
        Replica(database_url, redis_url, prefix="roost:", worker=False),
    ]
    try:
        for each in both:
            each.wait_until_up()
        yield both[0].url, both[1].url
    finally:
        for each in both:
            each.stop()


async def test_a_booking_through_one_replica_reaches_a_subscriber_on_the_other(
    database_url: str, database: Database, redis_server: RedisServer
) -> None:
    with replicas(database_url, redis_server.url) as (first, second):
        async with httpx.AsyncClient(base_url=first, timeout=10) as through_first:
            place = await a_place(through_first, instantBook=False)
            ws_url = second.replace("http://", "ws://") + "/graphql"
            async with socket(ws_url, place.host) as host:
                operation = await host.subscribe(NOTIFICATIONS)
                await asyncio.sleep(0.3)  # the subscription reaches its channel
                booking = await booked(through_first, place, 5, 8)
                await pay(through_first, place, booking["id"])
                paid_at = time.monotonic()
                heard = (await host.next_data(operation, within=5))["notifications"]
                delay = time.monotonic() - paid_at
    assert heard == {"kind": "BOOKING_REQUESTED", "booking": {"id": booking["id"]}}
    assert delay < 1, delay


@asynccontextmanager
async def live_on(database_url: str, redis: RedisServer) -> AsyncIterator[Live]:
    async with live_roost(database_url, redis_url=redis.url) as live:
        yield live


async def test_a_replica_outlives_a_redis_outage_and_delivers_again_after_it(
    database_url: str, database: Database, redis_server: RedisServer
) -> None:
    async with (
        live_on(database_url, redis_server) as live,
        httpx.AsyncClient(base_url=live.http_url, timeout=10) as client,
    ):
        place = await a_place(client, instantBook=False)
        pubsub = live.app.state.services.pubsub
        async with socket(live.ws_url, place.host) as host:
            operation = await host.subscribe(NOTIFICATIONS)
            await asyncio.sleep(0.2)
            redis_server.kill()
            # Bookings go on; their news is stored and readable, only not pushed.
            during = await booked(client, place, 5, 8)
            await pay(client, place, during["id"])
            await live.until_idle()
            stored = await gql(client, STORED, headers=place.as_host)
            kinds = [edge["node"] for edge in stored["data"]["notifications"]["edges"]]
            assert kinds == [{"kind": "BOOKING_REQUESTED", "booking": {"id": during["id"]}}]
            with pytest.raises(TimeoutError):
                await host.receive(within=0.5)
            # The connection itself is still served.
            await host.send({"type": "ping"})
            assert (await host.receive())["type"] == "pong"
            assert not pubsub.listening.is_set()

            redis_server.start()
            await asyncio.wait_for(pubsub.listening.wait(), timeout=15)
            after = await booked(client, place, 10, 12)
            await pay(client, place, after["id"])
            heard = (await host.next_data(operation, within=5))["notifications"]
            assert heard == {"kind": "BOOKING_REQUESTED", "booking": {"id": after["id"]}}
        assert (await client.get("/healthz")).status_code == 200
