"""Documents built to exhaust the server are refused before they run, and quickly.

How quickly is measured by bench/documents.py; these tests pin what the answer is. On the code
before the fix, the doubling fragments below held a process for minutes.
"""

import httpx
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    is_introspection_type,
    parse,
)

from app.http import create_app
from schema.limits import LIST_SIZES, query_cost
from schema.root import build_schema
from services.search import MAX_PAGE_SIZE
from tests.helpers import gql, http_client, make_settings, running


def doubling(levels: int, on: str, leaf: str) -> str:
    """Fragments spreading the next one twice, ``levels`` deep: 2**levels leaves when expanded."""
    fragments = [f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return " ".join([*fragments, f"fragment F{levels} on {on} {{ {leaf} }}"])


HOSTILE = {
    "on Query": "{ ...F0 } " + doubling(30, "Query", "__typename"),
    "on a nested type": "{ me { ...F0 } } " + doubling(30, "User", "firstName"),
    "in a connection": (
        "{ searchListings(first: 1) { edges { node { ...F0 } } } } "
        + doubling(30, "Listing", "title")
    ),
    "with aliases": "{ ...F0 } " + doubling(30, "Query", "a: __typename"),
}


@pytest.mark.parametrize("document", HOSTILE.values(), ids=HOSTILE.keys())
async def test_doubling_fragments_are_refused(client: httpx.AsyncClient, document: str) -> None:
    body = await gql(client, document)
    assert body["data"] is None
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}


async def test_the_cost_and_its_limit_are_in_the_error(client: httpx.AsyncClient) -> None:
    body = await gql(client, HOSTILE["on Query"])
    [error] = body["errors"]
    assert error["extensions"]["cost"] == 2**30
    assert error["extensions"]["maxCost"] == 100_000
    assert "fewer" in error["message"]


PAGES = """
query($first: Int) {
  searchListings(first: $first) { edges { node { title photos { url } amenities { code } } } }
}
"""


async def test_a_connection_multiplies_what_it_selects_by_first(database_url: str) -> None:
    # searchListings, then for each of `first` listings: edges, node, title, photos and a url
    # for each of at most 50 photos, amenities and a code for each of at most 80: 1 + first * 135.
    settings = make_settings(database_url, max_query_cost=1 + 10 * 135)
    async with running(create_app(settings)) as app, http_client(app) as client:
        allowed = await gql(client, PAGES, {"first": 10})
        refused = await gql(client, PAGES, {"first": 11})
        defaulted = await gql(client, PAGES)  # first defaults to 20
    assert "errors" not in allowed
    assert refused["errors"][0]["extensions"]["cost"] == 1 + 11 * 135
    assert defaulted["errors"][0]["extensions"]["cost"] == 1 + 20 * 135


async def test_a_first_past_the_largest_page_is_left_to_the_resolver(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, "{ searchListings(first: 1000000) { totalCount } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == {"first": "must be between 1 and 100"}


async def test_many_big_pages_in_one_document_are_refused(client: httpx.AsyncClient) -> None:
    pages = " ".join(
        f"p{i}: searchListings(first: 100) {{ edges {{ node {{ photos {{ url }} }} }} }}"
        for i in range(25)
    )
    body = await gql(client, "{ " + pages + " }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["cost"] > 100_000


async def test_depth_counts_through_fragments(client: httpx.AsyncClient) -> None:
    # Thirteen levels, each in a fragment of its own.
    chain = " ".join(f"fragment F{i} on User {{ friend {{ ...F{i + 1} }} }}" for i in range(12))
    body = await gql(client, "{ me { ...F0 } } " + chain + " fragment F12 on User { id }")
    messages = [error["message"] for error in body["errors"]]
    assert "'anonymous' exceeds maximum operation depth of 12" in messages


async def test_aliases_count_each_time_their_fragment_is_spread(
    client: httpx.AsyncClient,
) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(16))
    once = await gql(client, "{ ...A } fragment A on Query { " + aliases + " }")
    twice = await gql(
        client, "{ ...A ... on Query { ...A } } fragment A on Query { " + aliases + " }"
    )
    assert "errors" not in once
    [error] = twice["errors"]
    assert error["message"] == "The document has 32 aliases; at most 30 are allowed."


def chain(length: int) -> str:
    fragments = " ".join(
        f"fragment N{i} on User {{ firstName ...N{i + 1} }}" for i in range(length)
    )
    return f"{{ me {{ ...N0 }} }} {fragments} fragment N{length} on User {{ id }}"


async def test_a_long_chain_of_fragments_is_measured_without_recursion(
    client: httpx.AsyncClient,
) -> None:
    assert await gql(client, chain(60)) == {"data": {"me": None}}
    # Past graphql-core's own nesting limit: refused, cleanly.
    body = await gql(client, chain(210))
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_document_longer_than_the_limit_is_refused_unread(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, "# " + "x" * 60_000 + "\n{ __typename }")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    assert "50000 characters" in error["message"]


async def test_variables_with_too_many_values_are_refused(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        "query($a: [String!]) { searchListings(filter: {amenities: $a}) { totalCount } }",
        {"a": ["wifi"] * 10_000},
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == {"variables": "must hold at most 5000 values in all"}


@pytest.mark.parametrize(
    ("document", "variables", "fields"),
    [
        (
            '{ searchListings(filter: {currency: "E\\u0000"}) { totalCount } }',
            None,
            {"currency": "must not contain control characters"},
        ),
        (
            'mutation { login(email: "a\\u0007@example.com", password: "x") { accessToken } }',
            None,
            {"email": "must not contain control characters"},
        ),
        (
            "query($f: ListingFilter) { searchListings(filter: $f) { totalCount } }",
            {"f": {"location": "Lisbon\u0000", "amenities": ["wifi", "\u001b[2J"]}},
            {
                "location": "must not contain control characters",
                "amenities.1": "must not contain control characters",
            },
        ),
        (
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            {"e": "\u0085a@example.com"},
            {"e": "must not contain control characters"},
        ),
    ],
)
async def test_text_with_control_characters_is_bad_user_input(
    client: httpx.AsyncClient, document: str, variables: dict | None, fields: dict[str, str]
) -> None:
    body = await gql(client, document, variables)
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "fields": fields}
    assert body.get("data") is None


async def test_tabs_and_new_lines_are_text(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        "query($f: ListingFilter) { searchListings(filter: $f) { totalCount } }",
        {"f": {"location": "Lisbon\tPortugal\r\n"}},
    )
    assert body == {"data": {"searchListings": {"totalCount": 0}}}


def test_every_list_of_objects_has_a_size_for_the_cost() -> None:
    schema = build_schema()._schema
    missing = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or is_introspection_type(type_):
            continue
        for name, field in type_.fields.items():
            of = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if (
                isinstance(of, GraphQLList)
                and "first" not in field.args
                and isinstance(_named(of), GraphQLObjectType)
                and f"{type_.name}.{name}" not in LIST_SIZES
            ):
                missing.append(f"{type_.name}.{name}")
    assert missing == []


def _named(type_: object) -> object:
    while hasattr(type_, "of_type"):
        type_ = type_.of_type
    return type_


async def test_a_document_too_complex_to_check_says_so(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{" + " me { id }" * 450 + "}")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert error["message"].startswith("The document is too complex to check")


def test_a_known_documents_cost_follows_the_values_of_its_variables() -> None:
    # Costs are kept per document and the values its `first` arguments read: each value its own.
    schema = build_schema()._schema
    document = parse(PAGES)
    costs = [
        query_cost(schema, document, None, {"first": first})
        for first in (10, 11, True, 1, None, [3], 10)
    ]
    largest = 1 + MAX_PAGE_SIZE * 135
    assert costs == [1 + 10 * 135, 1 + 11 * 135, largest, 1 + 135, 1 + 20 * 135, largest, 1351]
