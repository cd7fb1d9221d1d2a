"""A backing service out of reach (PostgreSQL, Redis): a known condition, not a bug.

Requests that need it fail with SERVICE_UNAVAILABLE and HTTP 503; the log says so once when an
outage begins (whichever request or loop met it first) and once when it ends, not once per
request. An outage ends when a new connection to the service succeeds.
"""

import asyncio
import errno
import logging
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable

import asyncpg
from redis import exceptions as redis_errors
from sqlalchemy import exc as sqlalchemy_errors

log = logging.getLogger("roost.outage")

DATABASE = "database"
REDIS = "redis"

# Connection failures (08...), the server shutting down or starting (57P0x), no free slot.
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps: SQLAlchemy's ``orig``, graphql-core's ``original_error``,
    `limits`' ``storage_error``, and explicit causes."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(seen) < 16:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        for name in ("orig", "original_error", "storage_error"):
            pending.append(getattr(current, name, None))
        pending.append(current.__cause__)
    return seen


def _service_of(error: BaseException) -> str | None:
    if isinstance(error, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return REDIS
    if isinstance(error, sqlalchemy_errors.DBAPIError) and error.connection_invalidated:
        return DATABASE
    if isinstance(error, sqlalchemy_errors.TimeoutError):  # no pooled connection came free
        return DATABASE
    if isinstance(error, (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)):
        return DATABASE
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_UNREACHABLE_STATES):
        return DATABASE
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return DATABASE
    if isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS:
        return DATABASE
    return None


def unreachable_service(error: BaseException) -> str | None:
    """Which backing service ``error`` says is out of reach (``DATABASE``, ``REDIS``), if any."""
    for cause in _causes(error):
        if (service := _service_of(cause)) is not None:
            return service
    return None


class Outages:
    """Which services this process currently finds out of reach, and since when."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def failed(self, service: str, error: BaseException) -> None:
        with self._lock:
            self._failures[service] = self._failures.get(service, 0) + 1
            if service in self._since:
                return
            self._since[service] = time.monotonic()
        log.error(
            f"the {service} is unreachable; requests that need it answer SERVICE_UNAVAILABLE",
            extra={"service": service, "error": f"{type(error).__name__}: {error}"[:300]},
        )

    def recovered(self, service: str) -> None:
        with self._lock:
            since = self._since.pop(service, None)
            failures = self._failures.pop(service, 0)
        if since is not None:
            log.warning(
                f"the {service} is reachable again",
                extra={
                    "service": service,
                    "outage_seconds": round(time.monotonic() - since, 1),
                    "failures": failures,
                },
            )


outages = Outages()


def note_if_unreachable(error: BaseException) -> bool:
    """Records an outage when ``error`` is one; answers whether it was."""
    service = unreachable_service(error)
    if service is not None:
        outages.failed(service, error)
    return service is not None


async def keep_connecting(
    attempt: Callable[[], Awaitable[None]],
    *,
    stopping: asyncio.Event,
    name: str,
    max_backoff_seconds: float,
) -> None:
    """Runs ``attempt`` (a connection kept until it is lost) again and again until ``stopping``:
    after a pause that doubles from a tenth of a second up to ``max_backoff_seconds`` while
    attempts fail, with jitter so the processes of a fleet do not reconnect in step when the
    service returns. An outage is logged once; any other failure each time."""
    backoff = 0.1
    while not stopping.is_set():
        try:
            await attempt()
            backoff = 0.1
        except Exception as error:
            if not note_if_unreachable(error):
                log.warning("%s failed; connecting again", name, exc_info=True)
        delay = backoff * random.uniform(0.5, 1.0)  # noqa: S311 (not a secret)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        except TimeoutError:
            pass
        backoff = min(backoff * 2, max_backoff_seconds)
