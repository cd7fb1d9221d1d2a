"""A query that passes its checks and is answered without an error is executed by graphql-core
straight from the view (RoostSchema.answer_query); everything else takes strawberry's execute,
whose extensions check and present what fails. Both answer the same."""

from collections.abc import Iterator

import httpx
import pytest

from schema.root import RoostSchema
from tests.accounts_helpers import bearer
from tests.helpers import gql


@pytest.fixture
def strawberry_executions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """The queries strawberry's execute was asked to answer."""
    asked: list[str | None] = []
    original = RoostSchema.execute

    async def counted(self: RoostSchema, query: str | None, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        asked.append(query)
        return await original(self, query, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RoostSchema, "execute", counted)
    yield asked


async def test_a_query_answered_without_errors_skips_strawberrys_execute(
    client: httpx.AsyncClient, strawberry_executions: list[str | None]
) -> None:
    body = await gql(client, "query { amenities { code } }")
    assert body["data"]["amenities"], body
    assert "errors" not in body
    assert strawberry_executions == []


@pytest.mark.parametrize(
    ("document", "variables", "headers", "code"),
    [
        # Refused by a check: the document, the variables, the cost, the token.
        ("query { nope }", None, {}, "GRAPHQL_VALIDATION_FAILED"),
        ("query($f: Int) { searchListings(first: $f) { totalCount } }", {"f": "x"}, {}, None),
        (
            "query($f: Int) { searchListings(first: $f) { totalCount } }",
            {"f": 1, "unused": "a\x00b"},
            {},
            "BAD_USER_INPUT",
        ),
        ("query { me { id } }", None, bearer("not-a-token"), None),
        # Passes every check, then fails as it runs.
        ('query { listing(id: "bad") { id } }', None, {}, "BAD_USER_INPUT"),
        ("query { myListings { totalCount } }", None, {}, "UNAUTHENTICATED"),
    ],
)
async def test_what_fails_is_answered_by_strawberrys_execute(
    client: httpx.AsyncClient,
    strawberry_executions: list[str | None],
    document: str,
    variables: dict[str, object] | None,
    headers: dict[str, str],
    code: str | None,
) -> None:
    body = await gql(client, document, variables, headers=headers)
    assert body.get("errors"), body
    if code is not None:
        assert body["errors"][0]["extensions"]["code"] == code, body
    assert strawberry_executions == [document]


async def test_a_mutation_is_answered_by_strawberrys_execute(
    client: httpx.AsyncClient, strawberry_executions: list[str | None]
) -> None:
    document = 'mutation { logout(refreshToken: "none") }'
    await gql(client, document)
    assert strawberry_executions == [document]


async def test_a_query_sent_by_get_is_answered_directly_too(
    client: httpx.AsyncClient, strawberry_executions: list[str | None]
) -> None:
    response = await client.get("/graphql", params={"query": "{ amenities { code } }"})
    assert response.status_code == 200, response.text
    assert strawberry_executions == []
