"""Bad requests get a 4xx or a GraphQL error with a stable code: never a 500, never a trace."""

import logging

import httpx
import pytest
from graphql import get_introspection_query

from app.http import create_app
from tests.helpers import gql, http_client, make_settings, running

JSON = {"content-type": "application/json"}


def assert_no_internals(text: str) -> None:
    for leak in ("Traceback", 'File "', "site-packages", "sqlalchemy", "asyncpg"):
        assert leak not in text


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": ',  # malformed JSON
        b'{"query": "{ __typename }"\xff\xfe}',  # not UTF-8
        b"\xc3\x28",  # not UTF-8 at all
        b'"just a string"',  # JSON, but not an object
        b"42",
        b"null",
        b"{}",  # no query
        b'{"query": 7}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "operationName": {}}',
        b'{"query": "{ __typename }", "operationName": ["a"]}',
        b'{"query": "{ __typename }", "operationName": 5}',
        b"[]",  # batching is off
    ],
)
async def test_a_malformed_request_gets_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/graphql", content=body, headers=JSON)
    assert response.status_code == 400
    assert_no_internals(response.text)


async def test_an_unsupported_content_type_gets_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400


async def test_a_syntax_error_is_graphql_parse_failed(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ node(id: ")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert body["data"] is None


async def test_an_unknown_field_is_graphql_validation_failed(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ secretField }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "secretField" in error["message"]


async def test_a_document_50_levels_deep_is_refused(client: httpx.AsyncClient) -> None:
    deep = '{ node(id: "VXNlcjox") ' + "{ friend " * 50 + "}" * 51
    body = await gql(client, deep)
    assert body["data"] is None
    messages = [error["message"] for error in body["errors"]]
    assert "'anonymous' exceeds maximum operation depth of 12" in messages
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}


async def test_a_document_nested_past_the_parser_limit_is_refused(
    client: httpx.AsyncClient,
) -> None:
    deep = "{ a " * 1_300 + "}" * 1_300
    body = await gql(client, deep)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_too_many_aliases_are_refused(client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(31))
    body = await gql(client, "{ " + aliases + " }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_too_many_tokens_are_refused(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ " + "__typename " * 5_000 + "}")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_a_variable_of_the_wrong_type_is_bad_user_input(client: httpx.AsyncClient) -> None:
    body = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": {"x": 1}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_graphql_response_json_gets_400_for_a_refused_document(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ nothingHere }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/graphql-response+json"
    assert "data" not in response.json()
    ok = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert ok.status_code == 200
    assert ok.json() == {"data": {"__typename": "Query"}}


async def test_queries_work_over_get_and_mutations_do_not(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}
    response = await client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code in (400, 405)


async def test_graphiql_is_served_to_a_browser_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_an_unreachable_database_is_service_unavailable_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:9/roost")
    async with running(create_app(settings)) as app, http_client(app) as client:
        with caplog.at_level(logging.ERROR):
            response = await client.post(
                "/graphql",
                json={"query": '{ node(id: "VXNlcjox") { id } }'},
                headers={"X-Request-ID": "trace-me"},
            )
    assert response.status_code == 503
    [error] = response.json()["errors"]
    assert error == {
        "message": "Roost cannot reach a service it depends on right now; try again shortly.",
        "locations": [{"line": 1, "column": 3}],
        "path": ["node"],
        "extensions": {"code": "SERVICE_UNAVAILABLE"},
    }
    assert_no_internals(response.text)
    # Whoever met the outage first said so (the request, or the session listener at start).
    [record] = [r for r in caplog.records if r.name == "roost.outage"]
    assert record.exc_info is None  # a known condition: no traceback
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_bug_is_masked_and_logged_with_its_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug in the catalogue")

    monkeypatch.setattr(client._transport.app.state.services.amenities, "by_id", broken)
    with caplog.at_level(logging.ERROR, logger="roost.graphql"):
        response = await client.post(
            "/graphql", json={"query": "{ amenities { code } }"}, headers={"X-Request-ID": "bug"}
        )
    assert response.status_code == 200
    assert response.json()["errors"] == [
        {
            "message": "Internal server error.",
            "locations": [{"line": 1, "column": 3}],
            "path": ["amenities"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    assert_no_internals(response.text)
    [record] = [r for r in caplog.records if r.name == "roost.graphql"]
    assert record.request_id == "bug"
    assert record.exc_info is not None


async def test_an_operation_past_its_deadline_is_stopped(database_url: str) -> None:
    settings = make_settings(database_url, request_timeout_seconds=0.000_001)
    async with running(create_app(settings)) as app, http_client(app) as client:
        body = await gql(client, '{ node(id: "VXNlcjox") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"


class TestProduction:
    @pytest.fixture
    async def prod_client(self, database_url: str):
        settings = make_settings(database_url, env="production")
        async with running(create_app(settings)) as app, http_client(app) as client:
            yield client

    async def test_suggestions_are_hidden(self, prod_client: httpx.AsyncClient) -> None:
        body = await gql(prod_client, "{ nod(id: 1) { id } }")
        [error] = body["errors"]
        assert "Did you mean" not in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    async def test_introspection_is_off(self, prod_client: httpx.AsyncClient) -> None:
        body = await gql(prod_client, "{ __schema { types { name } } }")
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    async def test_graphiql_is_off(self, prod_client: httpx.AsyncClient) -> None:
        response = await prod_client.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 404


async def test_graphiql_introspection_fits_within_the_limits(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    body = await gql(client, query)
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
