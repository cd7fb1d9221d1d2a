"""Prometheus metrics: requests by route and GraphQL operation, the database pools, the outbox
and the worker's failures, served at ``/metrics`` to the scrapers the configuration allows.

Each process counts its own requests: behind `roost serve --workers N` a scrape reaches one
worker process and sees its counters only (the pool gauges are that process's too; the outbox
gauges are the database's, the same from any). Prometheus sums series of the same name, so
scraping each process (one port each, or one scrape per process behind the balancer) gives
the totals; `roost worker` processes count their failures in the log and in the outbox rows.
"""

import hmac
import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.rest import error_response
from app.settings import Settings
from db.database import Database
from services.events import outbox_backlog

# Operation names are chosen by clients: only plain names, and only so many distinct ones, get
# a series of their own, so a client cannot blow up the number of series.
_SAFE_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 200
ANONYMOUS = "anonymous"
OTHER = "other"
# Codes are Roost's own (extensions.code), a short fixed set; anything else is folded.
_SAFE_ERROR_CODE = re.compile(r"^[A-Z_]{1,40}$")
# From a millisecond to the request deadline (15 s by default).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


class Metrics:
    """One process's metrics, in a registry of their own (one per app, so tests are apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "roost_requests",
            "HTTP requests served, by route, GraphQL operation and outcome (ok, a GraphQL "
            "error code, or http_4xx / http_5xx).",
            ["route", "operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "roost_request_duration_seconds",
            "Time to serve an HTTP request, by route and GraphQL operation.",
            ["route", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pool_checked_out = Gauge(
            "roost_db_pool_connections_in_use",
            "Database connections lent out, by pool (orm: sessions; reads: the hot reads).",
            ["pool"],
            registry=self.registry,
        )
        self.pool_size = Gauge(
            "roost_db_pool_connections_open",
            "Database connections open, lent out or idle, by pool.",
            ["pool"],
            registry=self.registry,
        )
        self.pool_limit = Gauge(
            "roost_db_pool_connections_max",
            "The most connections each pool may open (the ORM pool's overflow included).",
            ["pool"],
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "roost_outbox_lag_seconds",
            "Age of the oldest outbox event that is due and neither processed nor parked "
            "(0 when none waits).",
            registry=self.registry,
        )
        self.outbox_due = Gauge(
            "roost_outbox_due_events",
            "Outbox events due and neither processed nor parked.",
            registry=self.registry,
        )
        self.outbox_parked = Gauge(
            "roost_outbox_parked_events",
            "Outbox events parked after too many failures, waiting for a person.",
            registry=self.registry,
        )
        self.worker_failures = Counter(
            "roost_worker_failures",
            "Failures in this process's worker loop: a handler of an event (stage=handler), "
            "an event as a whole (stage=event), or a whole pass (stage=pass).",
            ["stage"],
            registry=self.registry,
        )
        for stage in ("handler", "event", "pass"):
            self.worker_failures.labels(stage=stage)
        self._operation_names: set[str] = set()

    def operation_label(self, name: object) -> str:
        if name is None or name == "":
            return ANONYMOUS
        if not isinstance(name, str) or not _SAFE_OPERATION_NAME.match(name):
            return OTHER
        if name not in self._operation_names:
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return OTHER
            self._operation_names.add(name)
        return name

    def observe_request(
        self,
        *,
        route: str,
        operation: object,
        status: int | None,
        error_code: object,
        seconds: float,
    ) -> None:
        """Counts one HTTP request. ``operation`` is the GraphQL operation's name (None for
        REST routes); ``error_code`` the first GraphQL error's code, when there was one."""
        label = "" if route != "/graphql" else self.operation_label(operation)
        result = outcome(status, error_code)
        self.requests.labels(route=route, operation=label, outcome=result).inc()
        self.latency.labels(route=route, operation=label).observe(seconds)

    def worker_failed(self, stage: str) -> None:
        self.worker_failures.labels(stage=stage).inc()

    async def refresh(self, database: Database, *, now: datetime) -> None:
        """Reads what is measured at scrape time: the pools, and the outbox with one query."""
        for usage in database.pool_usage():
            self.pool_checked_out.labels(pool=usage.name).set(usage.in_use)
            self.pool_size.labels(pool=usage.name).set(usage.open)
            self.pool_limit.labels(pool=usage.name).set(usage.limit)
        async with database.read_session() as session:
            backlog = await outbox_backlog(session, now=now)
        self.outbox_lag.set(backlog.oldest_due_seconds)
        self.outbox_due.set(backlog.due)
        self.outbox_parked.set(backlog.parked)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def outcome(status: int | None, error_code: object) -> str:
    if status is None or status >= 500:
        return "http_5xx"
    if isinstance(error_code, str):
        return error_code if _SAFE_ERROR_CODE.match(error_code) else "ERROR"
    if status >= 400:
        return "http_4xx"
    return "ok"


def route_label(route: object) -> str:
    """The route's template (``/receipts/{payment_id}``), never the path itself: paths carry
    ids and secrets, and would make a series each."""
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return "unmatched"


def scrape_allowed(settings: Settings, request: Request) -> bool:
    """A scraper needs the token when one is set, and an address in ROOST_METRICS_ALLOW when
    that is set. With neither, development allows loopback and production nobody."""
    token = settings.metrics_token
    allowed = settings.metrics_allow
    if token is None and not allowed and settings.is_production:
        return False
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return False
    networks = allowed or (["127.0.0.0/8", "::1/128"] if token is None else [])
    if not networks:
        return True
    return _address_in(request.client.host if request.client else None, networks)


def _address_in(host: str | None, networks: Iterable[str]) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    if not scrape_allowed(state.settings, request):
        # Not found rather than forbidden: nothing tells a stranger there is anything here.
        return error_response(404, "NOT_FOUND", "Not Found")
    metrics: Metrics = state.metrics
    await metrics.refresh(state.database, now=state.services.clock())
    # The classic text format: every Prometheus reads it, and our names need nothing newer.
    return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
