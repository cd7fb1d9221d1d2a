"""The containers' health checks: the API answers /healthz; a worker is healthy while it keeps
finishing passes against its database, as its heartbeat file shows."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette

from app.healthcheck import http_healthy
from app.http import create_app
from app.worker import Worker
from db.database import Database
from gateways.email import ConsoleMailer
from services.payments import Gateways
from tests.helpers import START, FakeClock, free_port, make_settings, serving

ROOT = Path(__file__).parent.parent


def check_worker(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.healthcheck", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_roost_worker_is_healthy_while_it_beats_and_unhealthy_once_silent(
    app: Starlette, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "heartbeat"
    env = {
        **os.environ,
        "DATABASE_URL": app.state.settings.database_url,
        "ROOST_WORKER_HEARTBEAT_FILE": str(heartbeat),
        "ROOST_WORKER_POLL_SECONDS": "0.1",
    }
    before = check_worker(env)
    assert before.returncode == 1 and "no heartbeat" in before.stdout
    worker = subprocess.Popen(  # noqa: ASYNC220 (waited for in a thread)
        [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env
    )
    try:
        async with asyncio.timeout(30):
            while (await asyncio.to_thread(check_worker, env)).returncode != 0:
                assert worker.poll() is None, "roost worker exited early"
                await asyncio.sleep(0.2)
        beat = heartbeat.stat().st_mtime
        await asyncio.sleep(0.5)
        assert heartbeat.stat().st_mtime > beat  # it goes on beating while idle
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 10) == 0
    # Silent for longer than two leases: stuck, or cut off from its database.
    three_minutes_ago = time.time() - 180
    os.utime(heartbeat, (three_minutes_ago, three_minutes_ago))
    stale = check_worker(env)
    assert stale.returncode == 1 and "180 s ago" in stale.stdout
    unset = check_worker({k: v for k, v in env.items() if k != "ROOST_WORKER_HEARTBEAT_FILE"})
    assert unset.returncode == 1


async def test_a_worker_that_cannot_reach_its_database_does_not_beat(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    # Nothing listens on port 9 of loopback: the connection is refused at once.
    database = Database("postgresql://postgres@127.0.0.1:9/roost")
    worker = Worker(
        database,
        clock=FakeClock(START),
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        heartbeat=heartbeat,
    )
    try:
        with pytest.raises(OSError):
            await worker.run_once()
    finally:
        await database.dispose()
    assert not heartbeat.exists()


async def test_the_api_check_asks_healthz(database_url: str) -> None:
    async with serving(create_app(make_settings(database_url))) as base_url:
        assert await asyncio.to_thread(http_healthy, f"{base_url}/healthz")
    closed = f"http://127.0.0.1:{free_port()}/healthz"
    assert not await asyncio.to_thread(http_healthy, closed)
