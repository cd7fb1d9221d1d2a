"""Inputs a fuzzer found to crash the server answer BAD_USER_INPUT with a clean message."""

import httpx
import pytest
from strawberry.relay import to_base64

from tests.helpers import gql

SEARCH_PRICE = "query($f: ListingFilter) { searchListings(filter: $f) { totalCount } }"


@pytest.mark.parametrize("field", ["minPrice", "maxPrice"])
@pytest.mark.parametrize(
    "amount",
    ["1E+999999999", "1E-999999999", "-1E+20", "NaN", "Infinity", "1" * 41, "abc", "", True, []],
)
async def test_a_decimal_out_of_bounds_is_bad_user_input(
    client: httpx.AsyncClient, field: str, amount: object
) -> None:
    body = await gql(client, SEARCH_PRICE, {"f": {field: amount}})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    for python_repr in ("<class", "decimal.", "ConversionSyntax", "InvalidOperation"):
        assert python_repr not in error["message"]


async def test_a_decimal_literal_out_of_bounds_is_bad_user_input(
    client: httpx.AsyncClient,
) -> None:
    for literal in ('"1E+999999999"', '"abc"', "1e999"):
        body = await gql(
            client, f"{{ searchListings(filter: {{maxPrice: {literal}}}) {{ totalCount }} }}"
        )
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", literal
        assert "Decimal" in error["message"]


async def test_a_decimal_message_says_what_is_wrong(client: httpx.AsyncClient) -> None:
    body = await gql(client, SEARCH_PRICE, {"f": {"maxPrice": "abc"}})
    [error] = body["errors"]
    assert 'A Decimal is a number written as a string, like "120.50".' in error["message"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01"])
async def test_dates_far_out_of_range_are_bad_user_input(
    client: httpx.AsyncClient, day: str
) -> None:
    body = await gql(
        client,
        "query($d: Date) { searchListings(filter: {checkIn: $d}) { totalCount } }",
        {"d": day},
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Dates run from 1900-01-01 to 2999-12-31." in error["message"]


async def test_a_calendar_at_the_end_of_time_is_bad_user_input(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(
        client,
        f'{{ listing(id: "{to_base64("Listing", 1)}") '
        '{ calendar(from: "9999-12-30", to: "9999-12-31") { date } } }',
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("document", "variables", "field", "problem"),
    [
        (
            "{ searchListings(first: 0) { totalCount } }",
            None,
            "first",
            "must be between 1 and 100",
        ),
        (
            'mutation { register(input: {email: "new@example.com", password: "short", '
            'firstName: "A", lastName: "B"}) { accessToken } }',
            None,
            "password",
            "must be at least 10 characters long",
        ),
    ],
)
async def test_a_single_field_problem_is_named_in_the_message(
    client: httpx.AsyncClient, document: str, variables: dict | None, field: str, problem: str
) -> None:
    body = await gql(client, document, variables)
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "fields": {field: problem}}
    assert error["message"] == f"{field}: {problem}"


CREATE_LISTING = "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"


@pytest.mark.parametrize(
    ("document", "variables", "fields"),
    [
        (NODE, {"id": None}, {"id": "must not be null"}),
        (NODE, {"id": {"a": 1}}, {"id": "ID cannot represent value"}),
        (
            CREATE_LISTING,
            {"input": {"title": [1]}},
            {"title": "String cannot represent a non string value"},
        ),
        (
            CREATE_LISTING,
            {"input": {"description": "x", "address": {"city": "Lisbon"}}},
            {"title": "is required", "address.country": "is required"},
        ),
        (CREATE_LISTING, {"input": {"title": None}}, {"title": "must not be null"}),
        (CREATE_LISTING, {"input": "a flat"}, {"input": "must be an object"}),
        (
            CREATE_LISTING,
            {"input": {"title": "x", "colour": "blue"}},
            {"colour": "is not a field of CreateListingInput"},
        ),
    ],
)
async def test_a_variable_of_the_wrong_shape_names_its_fields_without_python(
    client: httpx.AsyncClient, document: str, variables: dict, fields: dict[str, str]
) -> None:
    body = await gql(client, document, variables)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    # Every field named, none of them empty; no Python reprs (None, {'title': ...}).
    assert fields.items() <= error["extensions"]["fields"].items()
    assert "" not in error["extensions"]["fields"]
    for python in ("None", "{'", "found:"):
        assert python not in error["message"], error["message"]


async def test_a_literal_null_for_a_required_argument_reads_as_graphql(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, "{ node(id: null) { id } }")
    [error] = body["errors"]
    assert error["message"] == "Expected value of non-null type 'ID!' not to be null."
