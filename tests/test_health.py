"""Liveness, readiness, request ids, the access log, CORS and body limits."""

import json
import logging

import httpx
import pytest

from app.http import create_app
from app.observability import JsonFormatter
from tests.helpers import http_client, make_settings, running


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_ready_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_answers_503_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 9 of loopback: the connection is refused at once.
    settings = make_settings("postgresql://postgres@127.0.0.1:9/roost")
    async with running(create_app(settings)) as app, http_client(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert (await client.get("/healthz")).status_code == 200


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_client_request_id_is_kept_and_an_odd_one_replaced(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-ID": "frontend-42.a"})
    assert kept.headers["x-request-id"] == "frontend-42.a"
    replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"


async def test_one_json_access_log_line_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="roost.access"):
        response = await client.post(
            "/graphql",
            json={"query": "query Probe { __typename }"},
            headers={"X-Request-ID": "probe-1"},
        )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "roost.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["method"] == "POST"
    assert line["path"] == "/graphql"
    assert line["status"] == 200
    assert line["request_id"] == "probe-1"
    assert line["operation"] == "Probe"
    assert isinstance(line["duration_ms"], float)


async def test_cors_preflight_allows_a_configured_origin_only(client: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = await client.options(
        "/graphql", headers={"Origin": "http://localhost:3000", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = await client.options("/graphql", headers={"Origin": "https://evil.test", **preflight})
    assert "access-control-allow-origin" not in refused.headers


async def test_a_declared_body_over_the_limit_gets_413(client: httpx.AsyncClient) -> None:
    body = b'{"query": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_streamed_body_over_the_limit_gets_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: only counting what arrives can catch it
        yield b'{"query": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}'

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_an_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "NOT_FOUND", "message": "Not Found"}}
