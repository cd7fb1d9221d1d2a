"""/metrics: read by Prometheus's own text parser, and shown only to the scrapers the
configuration allows."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from app.metrics import ANONYMOUS, MAX_OPERATION_NAMES, OTHER, Metrics
from app.worker import Worker, WorkerConfig
from db.database import Database
from db.models import OutboxEvent
from gateways.email import ConsoleMailer
from services.event_handlers import HandlerContext, Handlers
from services.events import Event, emit
from services.payments import Gateways
from tests.helpers import START, FakeClock, committed

PROBE = "query MetricsProbe { __typename }"
ANONYMOUS_PROBE = "{ __typename }"
BROKEN = "query MetricsBroken { noSuchField }"


@dataclass(frozen=True)
class MetricsFailure(Event):
    booking_id: int


Families = dict[str, list[Sample]]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Families:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(families: Families, family: str, sample: str, **labels: str) -> float:
    """The sample's value, 0 when it is not there (yet)."""
    for found in families.get(family, []):
        if found.name == sample and found.labels == labels:
            return found.value
    return 0.0


async def post(client: httpx.AsyncClient, query: str) -> None:
    await client.post("/graphql", json={"query": query})


@pytest.fixture
async def settings_changed(app: Starlette) -> AsyncIterator[None]:
    """The app's settings put back after a test that changed them."""
    settings = app.state.settings
    yield
    app.state.settings = settings


async def test_requests_are_counted_and_timed_by_operation(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for _ in range(3):
        await post(client, PROBE)
    await post(client, ANONYMOUS_PROBE)
    await post(client, BROKEN)
    await client.get("/healthz")
    after = await scrape(client)

    def grew(family: str, sample: str, **labels: str) -> float:
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    requests = ("roost_requests", "roost_requests_total")
    graphql = {"route": "/graphql"}
    assert grew(*requests, **graphql, operation="MetricsProbe", outcome="ok") == 3
    assert grew(*requests, **graphql, operation=ANONYMOUS, outcome="ok") == 1
    assert (
        grew(*requests, **graphql, operation="MetricsBroken", outcome="GRAPHQL_VALIDATION_FAILED")
        == 1
    )
    assert grew(*requests, route="/healthz", operation="", outcome="ok") == 1

    latency = "roost_request_duration_seconds"
    probe = {**graphql, "operation": "MetricsProbe"}
    assert grew(latency, f"{latency}_count", **probe) == 3
    assert grew(latency, f"{latency}_bucket", **probe, le="+Inf") == 3
    buckets = [
        s
        for s in after[latency]
        if s.name.endswith("_bucket") and s.labels.items() >= probe.items()
    ]
    assert {s.labels["le"] for s in buckets} >= {"0.005", "0.1", "1.0", "15.0", "+Inf"}
    assert value(after, latency, f"{latency}_sum", **probe) > 0


async def test_the_pools_are_measured(client: httpx.AsyncClient) -> None:
    families = await scrape(client)
    assert (
        value(
            families, "roost_db_pool_connections_max", "roost_db_pool_connections_max", pool="orm"
        )
        == 20
    )
    open_orm = value(
        families, "roost_db_pool_connections_open", "roost_db_pool_connections_open", pool="orm"
    )
    assert open_orm >= 1  # the scrape itself drew on it
    assert {s.labels["pool"] for s in families["roost_db_pool_connections_in_use"]} >= {"orm"}


async def test_the_outbox_lag_is_the_age_of_the_oldest_due_event(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    families = await scrape(client)
    assert value(families, "roost_outbox_lag_seconds", "roost_outbox_lag_seconds") == 0
    async with committed(database) as session:
        emit(session, MetricsFailure(booking_id=1), now=START - timedelta(seconds=90))
        emit(session, MetricsFailure(booking_id=2), now=START - timedelta(seconds=30))
        # Not due yet: it does not make the workers late.
        emit(session, MetricsFailure(booking_id=3), now=START, delay=timedelta(hours=1))
        session.add(
            OutboxEvent(
                kind="MetricsFailure",
                payload={"booking_id": 4},
                available_at=START - timedelta(days=3),
                parked_at=START - timedelta(days=2),
            )
        )

    families = await scrape(client)
    assert value(families, "roost_outbox_lag_seconds", "roost_outbox_lag_seconds") == 90
    assert value(families, "roost_outbox_due_events", "roost_outbox_due_events") == 2
    assert value(families, "roost_outbox_parked_events", "roost_outbox_parked_events") == 1


async def test_worker_failures_are_counted(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    async def failing(session: AsyncSession, event: MetricsFailure, _: HandlerContext) -> None:
        raise RuntimeError("the provider is down")

    handlers = Handlers()
    handlers.on(MetricsFailure, "failing")(failing)
    worker = Worker(
        database,
        clock=FakeClock(START),
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        config=WorkerConfig(),
        handlers=handlers,
        metrics=app.state.metrics,
    )
    async with committed(database) as session:
        emit(session, MetricsFailure(booking_id=1), now=START)

    before = await scrape(client)
    await worker.run_once()
    after = await scrape(client)

    failures = ("roost_worker_failures", "roost_worker_failures_total")
    assert value(after, *failures, stage="handler") - value(before, *failures, stage="handler") == 1
    assert value(after, *failures, stage="event") - value(before, *failures, stage="event") == 1
    assert value(after, *failures, stage="pass") == value(before, *failures, stage="pass")


def test_operation_names_are_bounded() -> None:
    metrics = Metrics()
    assert metrics.operation_label(None) == ANONYMOUS
    assert metrics.operation_label("drop table; --") == OTHER
    assert metrics.operation_label("x" * 65) == OTHER
    names = [f"Operation{n}" for n in range(MAX_OPERATION_NAMES)]
    assert [metrics.operation_label(name) for name in names] == names
    assert metrics.operation_label("OneTooMany") == OTHER
    assert metrics.operation_label("Operation7") == "Operation7"  # known names keep theirs


async def test_an_operation_name_no_document_defines_is_counted_as_other(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    await client.post("/graphql", json={"query": PROBE, "operationName": "not a name {}"})
    after = await scrape(client)
    labels = {"route": "/graphql", "operation": OTHER}
    grown = [
        s.value - value(before, "roost_requests", s.name, **s.labels)
        for s in after["roost_requests"]
        if s.name == "roost_requests_total" and s.labels.items() >= labels.items()
    ]
    assert sum(grown) == 1


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
        base_url="http://testserver",
    )


async def test_development_answers_loopback_only(
    app: Starlette, database: Database, settings_changed: None
) -> None:
    async with client_from(app, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 200
    async with client_from(app, "203.0.113.9") as stranger:
        response = await stranger.get("/metrics")
    assert response.status_code == 404
    assert "roost_requests" not in response.text


async def test_production_answers_nobody_unless_configured(
    app: Starlette, database: Database, settings_changed: None
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"env": "production"})
    async with client_from(app, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 404


async def test_a_token_is_required_when_set(
    app: Starlette, database: Database, settings_changed: None
) -> None:
    token = "scraper-token-" + "s" * 30
    app.state.settings = app.state.settings.model_copy(
        update={"env": "production", "metrics_token": SecretStr(token)}
    )
    async with client_from(app, "203.0.113.9") as scraper:
        assert (await scraper.get("/metrics")).status_code == 404
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await scraper.get("/metrics", headers=wrong)).status_code == 404
        right = {"Authorization": f"Bearer {token}"}
        families = await scrape(scraper, **right)
    assert "roost_requests" in families


async def test_allowed_networks_are_the_only_ones_answered(
    app: Starlette, database: Database, settings_changed: None
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"env": "production", "metrics_allow": ["10.0.0.0/8"]}
    )
    async with client_from(app, "10.1.2.3") as inside:
        assert (await inside.get("/metrics")).status_code == 200
    async with client_from(app, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 404
