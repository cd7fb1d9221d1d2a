"""A page of search results reads only the columns its listings' fields need
(schema/listings.py's LISTING_FIELD_COLUMNS); every field of Listing must still answer by
search exactly as it does by id, which reads the whole row."""

from decimal import Decimal

import httpx
import pytest
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
)
from strawberry.relay import from_base64

from db.database import Database
from db.models import Listing, ListingPhoto, Upload
from schema.listings import LISTING_FIELD_COLUMNS
from schema.root import build_schema
from tests.booking_helpers import Place, a_place
from tests.factories import add_photo
from tests.helpers import StatementCounter, committed, gql

LISTING = build_schema()._schema.type_map["Listing"]
assert isinstance(LISTING, GraphQLObjectType)


def _leaves(type_: GraphQLObjectType) -> str:
    return " ".join(
        ["__typename"]
        + [
            name
            for name, field in type_.fields.items()
            if is_leaf_type(get_named_type(field.type))
            and not any(is_required_argument(a) for a in field.args.values())
        ]
    )


def _selection(name: str, field: GraphQLField) -> str | None:
    """The field with its leaves (of an object: its own; of anything else: its type name);
    None for a field that needs arguments."""
    if any(is_required_argument(argument) for argument in field.args.values()):
        return None
    named = get_named_type(field.type)
    if is_leaf_type(named):
        return name
    if isinstance(named, GraphQLObjectType):
        return f"{name} {{ {_leaves(named)} }}"
    return f"{name} {{ __typename }}"


FIELDS = {
    name: selection
    for name, field in LISTING.fields.items()
    if (selection := _selection(name, field)) is not None
}
BY_SEARCH = """
query($location: String!) {
  searchListings(filter: {location: $location}) { edges { node { %s } } }
}
"""
BY_ID = "query($id: ID!) { listing(id: $id) { %s } }"


@pytest.fixture
async def place(client: httpx.AsyncClient, database: Database) -> Place:
    """A listing with a value in every column a field shows: rated, with a photo."""
    place = await a_place(
        client,
        title="Quillfeather studio",
        address={
            "line1": "Rua das Flores 3",
            "city": "Lisboa",
            "region": "Lisboa",
            "postalCode": "1200-195",
            "country": "PT",
        },
    )
    async with committed(database) as session:
        listing = await session.get(Listing, int(from_base64(place.listing_id)[1]))
        assert listing is not None
        await add_photo(session, listing, "quillfeather")
        # A second photo, its caption in characters JSON escapes (photos come as JSON text).
        upload = Upload(
            owner_id=listing.host_id, storage_key="second.jpg", thumbnail_key="second-t.jpg",
            content_type="image/jpeg", width=30, height=20, byte_size=1,
        )  # fmt: skip
        session.add(upload)
        await session.flush()
        caption = 'Sala "grande" \\ ☀\n\u2028 fim'
        session.add(
            ListingPhoto(listing_id=listing.id, upload_id=upload.id, position=1, caption=caption)
        )
        listing.rating_avg = Decimal("4.25")
        listing.review_count = 5
    return place


def test_every_field_that_reads_chosen_columns_is_compared() -> None:
    assert set(LISTING_FIELD_COLUMNS) - {"__typename"} <= set(FIELDS)


@pytest.mark.parametrize("viewer", ["anonymous", "host"])
async def test_each_field_of_a_listing_answers_by_search_as_by_id(
    client: httpx.AsyncClient, place: Place, viewer: str
) -> None:
    headers = place.as_host if viewer == "host" else None
    where = {"location": "Quillfeather"}
    for name, selection in FIELDS.items():
        found = await gql(client, BY_SEARCH % selection, where, headers=headers)
        by_id = await gql(client, BY_ID % selection, {"id": place.listing_id}, headers=headers)
        assert "errors" not in found and "errors" not in by_id, (name, found, by_id)
        [edge] = found["data"]["searchListings"]["edges"]
        assert edge["node"] == by_id["data"]["listing"], name
        if name == "photos":
            assert [photo["caption"] for photo in edge["node"]["photos"]] == [
                None,
                'Sala "grande" \\ ☀\n\u2028 fim',
            ]


async def test_a_page_reads_only_the_columns_its_fields_need(
    client: httpx.AsyncClient, database: Database, place: Place
) -> None:
    def page_statement(counter: StatementCounter) -> str:
        [statement] = [s for s in counter.statements if "top.sort_key" in s]
        return statement

    shown = "id title nightlyPrice { amount } host { firstName } photos { url }"
    with StatementCounter(database) as counter:
        await gql(client, BY_SEARCH % shown, {"location": "Quillfeather"})
    statement = page_statement(counter)
    for column in ("title", "nightly_price_minor", "currency", "host_id"):
        assert f"l.{column}," in statement
    for column in ("description", "search_text", "created_at", "moderation_reason"):
        assert f"NULL AS {column}," in statement

    # A field that may read any column reads them all.
    with StatementCounter(database) as counter:
        await gql(client, BY_SEARCH % "title moderation", {"location": "Quillfeather"})
    assert "NULL AS" not in page_statement(counter)
