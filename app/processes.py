"""Several server processes on one port, each with a listening socket of its own.

uvicorn's ``--workers`` binds one socket and shares it: every process waits on the same accept
queue, and the kernel wakes the most recently idle one first, so a few busy processes take
nearly every connection while the others sit idle (measured here: one of two workers served
six times the other's requests). With ``SO_REUSEPORT`` (Linux) each process binds its own
socket on the address and the kernel spreads new connections across them.
"""

import errno
import multiprocessing
import signal
import socket
import sys
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

APP = "app.http:create_app"


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
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


class PortUnavailable(Exception):
    pass


def ensure_port_free(host: str, port: int) -> None:
    """Raises PortUnavailable when we could not listen on the address. Bound without
    ``SO_REUSEPORT``, so even another server that shares its port is found (it would silently
    get half our traffic)."""
    try:
        listening_socket(host, port, shared=False).close()
    except OSError as error:
        message = f"cannot listen on {host}:{port}: {error.strerror or error}."
        if error.errno == errno.EADDRINUSE:
            message += " Stop what listens there or choose another --port."
        raise PortUnavailable(message) from None


def _serve_one(host: str, port: int, app: str, options: dict[str, Any]) -> None:
    import uvicorn

    listener = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(app, factory=True, **options)).run(sockets=[listener])


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve_balanced(
    host: str, port: int, workers: int, options: dict[str, Any], *, app: str = APP
) -> int:
    """Runs ``workers`` server processes of ``app`` (an ASGI app factory, as uvicorn names it)
    until one ends or this process gets SIGINT or SIGTERM; then stops them all. Answers an exit
    code: 0 when told to stop, 1 when a process died."""
    ensure_port_free(host, port)  # again: before any child, in case it was taken meanwhile
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=_serve_one, args=(host, port, app, options), name=f"roost-{number}")
        for number in range(1, workers + 1)
    ]
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    for child in children:
        child.start()
    try:
        wait([child.sentinel for child in children])  # returns when any child has ended
        code = 1  # a server process ended on its own: stop the rest, and say so
    except _Stop:
        code = 0
    finally:
        # A second Ctrl-C must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: uvicorn finishes its requests and shuts down
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join()
    return code
