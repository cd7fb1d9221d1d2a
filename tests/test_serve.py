"""`roost serve` as a newcomer runs it: nothing configured, an embedded PostgreSQL."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import uvicorn

from app import cli
from app.cli import main as roost
from app.processes import _hand_out, can_balance, listen
from tests.helpers import free_port, postgres_processes

ROOT = Path(__file__).parent.parent


class Roost:
    """`roost serve` in a child process, with its output kept for inspection."""

    def __init__(self, data_dir: Path, *, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ROOST_ENV")}
        env["ROOST_DATA_DIR"] = str(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"roost serve exited early:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"roost serve did not come up:\n{self.output}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def graphql(self, query: str) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


def test_serve_starts_everything_keeps_its_data_and_leaves_nothing_running(
    data_dir: Path,
) -> None:
    first = Roost(data_dir)
    try:
        first.wait_until_up()
        assert first.graphql("{ __typename }") == {"data": {"__typename": "Query"}}
        assert httpx.get(f"{first.url}/readyz").status_code == 200
        graphiql = httpx.get(f"{first.url}/graphql", headers={"accept": "text/html"})
        assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()
        assert "Loaded demo data: 6 users, 4 listings and a trip." in first.output
        assert "Demo accounts (password roost-demo-2026): guest liam.obrien@example.com" in (
            first.output
        )
        assert postgres_processes(data_dir)
    finally:
        assert first.stop(signal.SIGTERM) != -signal.SIGKILL
    assert postgres_processes(data_dir) == []

    second = Roost(data_dir)
    try:
        second.wait_until_up()
        assert "Loaded demo data" not in second.output
        body = second.graphql('{ node(id: "VXNlcjox") { ... on User { firstName } } }')
        assert body == {"data": {"node": {"firstName": "María"}}}
    finally:
        second.stop(signal.SIGINT)  # Ctrl-C
    assert postgres_processes(data_dir) == []


def test_serve_with_workers_runs_balanced_processes_where_it_can(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[str, int, int]] = []

    def serve_balanced(host: str, port: int, workers: int, options: dict[str, Any]) -> int:
        started.append((host, port, workers))
        return 0

    def one_shared_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("served on one shared socket, not balanced")

    monkeypatch.setattr(cli, "serve_balanced", serve_balanced)
    monkeypatch.setattr(cli, "can_balance", lambda: True)
    monkeypatch.setattr(uvicorn, "run", one_shared_socket)
    # `roost serve` hands these to its server processes through the environment.
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ROOST_PUBLIC_URL", "http://127.0.0.1")
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path))
    port = free_port()
    assert roost(["serve", "--port", str(port), "--workers", "2"]) == 0
    assert started == [("127.0.0.1", port, 2)]


@pytest.mark.skipif(not can_balance(), reason="handing connections over needs Linux")
def test_balanced_server_processes_share_the_connections_evenly_and_stop_together() -> None:
    # The balancing of `roost serve --workers 2`, around an app that starts in no time: Roost's
    # own app would cost each process seconds of imports, and the test above starts it.
    port = free_port()
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tests.balanced_server", str(port)], cwd=ROOT
    )
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(20)]
    servers: list[psutil.Process] = []

    def on_our_port(process: psutil.Process, status: str) -> int:
        return sum(
            1
            for c in process.net_connections(kind="tcp")
            if c.status == status and c.laddr.port == port
        )

    try:
        deadline = time.monotonic() + 30
        while len(servers) < 2 or not on_our_port(psutil.Process(parent.pid), "LISTEN"):
            assert time.monotonic() < deadline, "the server never listened"
            assert parent.poll() is None, "the parent process ended"
            time.sleep(0.05)
            servers = [
                child
                for child in psutil.Process(parent.pid).children()
                if "resource_tracker" not in " ".join(child.cmdline())  # multiprocessing's own
            ]
        assert len(servers) == 2
        for client in clients:  # twenty connections, one after another, each kept open
            assert client.get("/healthz").status_code == 200
        # Not a hash's spread (seven to one was seen with eight): each gets its fair half.
        assert [on_our_port(server, "ESTABLISHED") for server in servers] == [10, 10]
        for client in clients[:10]:
            client.close()
        time.sleep(0.3)  # each process tells within 50 ms how many it still holds
        more = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(4)]
        clients += more
        for client in more:
            assert client.get("/healthz").status_code == 200
        assert sorted(on_our_port(server, "ESTABLISHED") for server in servers) == [7, 7]
    finally:
        for client in clients:
            client.close()
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
    assert not [child for child in servers if child.is_running() and child.status() != "zombie"]


def test_serve_on_a_taken_port_says_so_before_it_starts_or_greets(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ROOST_DATA_DIR", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert roost(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert "Roost is starting" not in out
    assert f"roost: cannot listen on 127.0.0.1:{port}: Address already in use." in err
    assert "choose another --port" in err


@pytest.mark.skipif(not can_balance(), reason="handing connections over needs Linux")
def test_a_process_whose_channel_is_full_is_passed_over_not_waited_for() -> None:
    listener = listen("127.0.0.1", free_port())
    listener.setblocking(False)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(2)]
    channels = [ours for ours, _ in pairs]
    for channel in channels:
        channel.setblocking(False)
    with contextlib.suppress(BlockingIOError):  # the first process is stuck: nothing read
        while True:
            channels[0].send(b"c")
    load = [0, 0, 0, 5]  # and it looks the less loaded (0 open against 5)
    client = socket.create_connection(listener.getsockname())
    try:
        deadline = time.monotonic() + 5
        sent = [0, 0]
        while sent == [0, 0] and time.monotonic() < deadline:
            _hand_out(listener, channels, sent, load)
        assert sent == [0, 1]
        message, fds, _, _ = socket.recv_fds(pairs[1][1], 1, 1)
        assert message == b"c" and len(fds) == 1
        os.close(fds[0])
    finally:
        client.close()
        listener.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
