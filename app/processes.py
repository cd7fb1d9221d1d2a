"""Several server processes on one port, sharing its connections evenly.

uvicorn's ``--workers`` binds one socket and shares it: every process waits on the same accept
queue, and the kernel wakes the most recently idle one first, so a few busy processes take
nearly every connection while the others sit idle (measured here: one of two workers served
six times the other's requests). ``SO_REUSEPORT`` (each process its own socket) spreads them by
a hash of the client's address and port, which is even only over many connections: eight
kept-alive connections from a load balancer or a benchmark came out seven to one, and that one
busy process made the p95 latency (bench/search.py).

So here the parent process accepts every connection and hands it, over a Unix socket, to the
server process with the fewest open (``SCM_RIGHTS``: the process gets the connection itself, not
a proxy of it). Each server process publishes how many connections it has open in shared memory;
a connection's bytes never pass through the parent.
"""

import asyncio
import errno
import multiprocessing
import signal
import socket
import sys
from collections.abc import Sequence
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

import uvicorn

APP = "app.http:create_app"
# How often a server process publishes its count of open connections, for the closed ones.
_PUBLISH_EVERY_SECONDS = 0.05


def server_options(max_message_bytes: int) -> dict[str, Any]:
    """How uvicorn runs Roost, under `roost serve` and gunicorn alike."""
    return {
        "log_config": None,
        # The app applies ROOST_TRUSTED_PROXIES itself.
        "proxy_headers": False,
        "ws": "websockets-sansio",
        # A websocket message is held by the server whole, like a request body: as bounded.
        "ws_max_size": max_message_bytes,
        # Live messages are a few hundred bytes: compressing each cost more time than it saved
        # (a quarter of a fan-out to 1,000 subscribers, bench/subscriptions.py), and the
        # compressor of each connection is memory held for as long as it is open.
        "ws_per_message_deflate": False,
    }


def can_balance() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


class PortUnavailable(Exception):
    pass


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on the address; PortUnavailable, saying why, when it cannot be had.
    Bound without ``SO_REUSEPORT``, so even another server that shares its port is found (it
    would silently get half our traffic)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        message = f"cannot listen on {host}:{port}: {error.strerror or error}."
        if error.errno == errno.EADDRINUSE:
            message += " Stop what listens there or choose another --port."
        raise PortUnavailable(message) from None
    return listener


def ensure_port_free(host: str, port: int) -> None:
    """Raises PortUnavailable when we could not listen on the address."""
    listen(host, port).close()


class _HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that listens on nothing: it serves the connections the parent process
    sends over ``channel``, and keeps ``load[2 * number]`` (connections received) and
    ``load[2 * number + 1]`` (connections open) current for the parent's choice."""

    def __init__(
        self, config: uvicorn.Config, channel: socket.socket, number: int, load: Any
    ) -> None:
        super().__init__(config)
        self._channel = channel
        self._number = number
        self._load = load
        self._received = 0
        self._connecting: set[asyncio.Task[Any]] = set()
        self._publisher: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._take_connections)
        self._publisher = asyncio.create_task(self._publish_every_while())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self._channel.fileno())
        if self._publisher is not None:
            self._publisher.cancel()
        await super().shutdown(sockets=sockets)

    def _take_connections(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 1, 1)
            except (BlockingIOError, InterruptedError):
                break
            if not message:  # the parent is gone: nothing more will come
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                break
            for fd in fds:
                self._received += 1
                connection = socket.socket(fileno=fd)
                connection.setblocking(False)
                task = loop.create_task(self._serve_connection(connection))
                self._connecting.add(task)
                task.add_done_callback(self._connected)
        self._publish()

    async def _serve_connection(self, connection: socket.socket) -> None:
        def protocol() -> asyncio.Protocol:
            # What uvicorn's own startup gives each connection it accepts.
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
            )

        try:
            await asyncio.get_running_loop().connect_accepted_socket(protocol, connection)
        except OSError:  # the client left before it was served
            connection.close()

    def _connected(self, task: "asyncio.Task[Any]") -> None:
        self._connecting.discard(task)
        self._publish()

    def _publish(self) -> None:
        self._load[2 * self._number] = self._received
        self._load[2 * self._number + 1] = len(self.server_state.connections) + len(
            self._connecting
        )

    async def _publish_every_while(self) -> None:
        while True:
            await asyncio.sleep(_PUBLISH_EVERY_SECONDS)
            self._publish()


def _serve_handed(
    channel: socket.socket, number: int, load: Any, app: str, options: dict[str, Any]
) -> None:
    config = uvicorn.Config(app, factory=True, **options)
    _HandedConnectionsServer(config, channel, number, load).run(sockets=[])


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _by_load(sent: Sequence[int], load: Any, first: int) -> list[int]:
    """The server processes, fewest connections first, counting those sent each that it has
    not taken yet; ties go round from ``first``."""
    workers = len(sent)
    order = [(first + offset) % workers for offset in range(workers)]
    return sorted(order, key=lambda n: sent[n] - load[2 * n] + load[2 * n + 1])


def _hand_out(
    listener: socket.socket, channels: Sequence[socket.socket], sent: list[int], load: Any
) -> None:
    """Every connection waiting on ``listener``, each to the least loaded process. A process
    whose channel is full (stuck, far behind) is passed over rather than waited for: that wait
    would stop every process getting connections."""
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # out of file descriptors, or the client already gone: wait for more
            return
        with connection:
            for number in _by_load(sent, load, first=sum(sent) % len(sent)):
                try:
                    socket.send_fds(channels[number], [b"c"], [connection.fileno()])
                except (BlockingIOError, InterruptedError):
                    continue
                sent[number] += 1
                break
            # Taken by none: the connection closes, and its client may try again.


def serve_balanced(
    host: str, port: int, workers: int, options: dict[str, Any], *, app: str = APP
) -> int:
    """Runs ``workers`` server processes of ``app`` (an ASGI app factory, as uvicorn names it),
    this process accepting their connections, until one ends or this process gets SIGINT or
    SIGTERM; then stops them all. Answers an exit code: 0 when told to stop, 1 when a process
    died."""
    listener = listen(host, port)  # again: before any child, in case it was taken meanwhile
    listener.setblocking(False)
    spawn = multiprocessing.get_context("spawn")
    load = spawn.RawArray("q", 2 * workers)
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(workers)]
    children = [
        spawn.Process(
            target=_serve_handed,
            args=(theirs, number, load, app, options),
            name=f"roost-{number + 1}",
        )
        for number, (_, theirs) in enumerate(pairs)
    ]
    channels = [ours for ours, _ in pairs]
    for channel in channels:
        channel.setblocking(False)
    sent = [0] * workers
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    for child in children:
        child.start()
    for _, theirs in pairs:
        theirs.close()
    sentinels = [child.sentinel for child in children]
    try:
        while not any(ready in sentinels for ready in wait([listener, *sentinels])):
            _hand_out(listener, channels, sent, load)
        code = 1  # a server process ended on its own: stop the rest, and say so
    except _Stop:
        code = 0
    finally:
        # A second Ctrl-C must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        listener.close()
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn finishes its requests and shuts down
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join()
        for channel in channels:
            channel.close()
    return code
