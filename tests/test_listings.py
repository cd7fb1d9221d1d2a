"""Listings over HTTP: who may create and change them, what is checked, the calendar."""

from collections.abc import Callable
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from strawberry.relay import from_base64

from db.database import Database
from db.models import Booking, Listing, User
from tests.accounts_helpers import bearer, error_code, register, unique_email
from tests.factories import make_booking, make_user
from tests.helpers import committed, gql
from tests.listing_helpers import (
    BLOCK,
    CREATE,
    LISTING_FIELDS,
    UPDATE,
    create,
    host_token,
    listing_input,
)
from tests.upload_helpers import image_bytes, upload

LISTING = "query($id: ID!) { listing(id: $id) { id title status } }"
DELETE = "mutation($id: ID!) { deleteListing(id: $id) }"
MY_LISTINGS = "{ myListings { totalCount edges { node { id } } } }"
SET_PRICES = """
mutation($id: ID!, $f: Date!, $t: Date!) {
  setNightPrices(listingId: $id, from: $f, to: $t, amount: "150")
}
"""
UNBLOCK = (
    "mutation($id: ID!, $f: Date!, $t: Date!) { unblockDates(listingId: $id, from: $f, to: $t) }"
)
CALENDAR = """
query($id: ID!, $f: Date!, $t: Date!) {
  listing(id: $id) { calendar(from: $f, to: $t) { date available price { amount } } }
}
"""


async def test_a_host_publishes_a_listing(client: httpx.AsyncClient, database: Database) -> None:
    token = await host_token(client)
    image = (await upload(client, image_bytes(), token=token)).json()
    created = await create(client, token, photoUploadIds=[image["id"]])
    assert created["status"] == "PUBLISHED"
    assert created["timeZone"] == "Europe/Lisbon"  # found from the coordinates
    assert created["nightlyPrice"] == {"amount": "95.50", "currency": "EUR", "formatted": "€95.50"}
    assert created["cleaningFee"]["amount"] == "30.00"
    assert {a["code"] for a in created["amenities"]} == {"wifi", "kitchen", "air_conditioning"}
    assert created["photos"][0]["url"] == image["url"]
    assert created["address"]["line1"] == "Rua dos Remédios 12"
    assert (created["checkInTime"], created["checkOutTime"]) == ("15:00", "11:00")
    assert created["rating"] is None and created["reviewCount"] == 0
    assert (await gql(client, LISTING, {"id": created["id"]}))["data"]["listing"]["title"] == (
        "Alfama loft with a view"
    )


async def test_only_hosts_create_listings(client: httpx.AsyncClient, database: Database) -> None:
    guest = (await register(client))["accessToken"]
    body = await gql(client, CREATE, {"input": listing_input()}, headers=bearer(guest))
    assert error_code(body) == "FORBIDDEN"
    assert error_code(await gql(client, CREATE, {"input": listing_input()})) == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"title": "  "}, {"title": "must not be empty"}),
        ({"title": "x" * 121}, {"title": "must be at most 120 characters long"}),
        ({"latitude": 91.0}, {"latitude": "must be between -90 and 90"}),
        ({"longitude": -181.0}, {"longitude": "must be between -180 and 180"}),
        ({"maxGuests": 0}, {"maxGuests": "must be between 1 and 50"}),
        ({"bathrooms": 1.25}, {"bathrooms": "must be between 0 and 50, in halves"}),
        (
            {"nightlyPrice": {"amount": "10.5", "currency": "JPY"}, "cleaningFee": None},
            {"nightlyPrice.amount": "JPY has no fractions of its unit"},
        ),
        (
            {"nightlyPrice": {"amount": "10.123", "currency": "EUR"}},
            {"nightlyPrice.amount": "EUR amounts have at most 2 decimals"},
        ),
        (
            {"nightlyPrice": {"amount": "0", "currency": "EUR"}},
            {"nightlyPrice.amount": "must be more than zero"},
        ),
        (
            {"nightlyPrice": {"amount": "10", "currency": "XYZ"}, "cleaningFee": None},
            {"nightlyPrice.currency": "is not a currency Roost prices in"},
        ),
        (
            {"cleaningFee": {"amount": "10", "currency": "USD"}},
            {"cleaningFee.currency": "must be the currency of the nightly price"},
        ),
        (
            {"address": {"city": "Lisboa", "country": "XX"}},
            {"address.country": "must be an ISO 3166-1 alpha-2 code, like PT"},
        ),
        ({"amenities": ["wifi", "moat"]}, {"amenities": "unknown amenities: moat"}),
        ({"minNights": 10, "maxNights": 5}, {"maxNights": "must not be below minNights"}),
        ({"timeZone": "Mars/Base"}, {"timeZone": "must be an IANA time zone, like Europe/Lisbon"}),
    ],
)
async def test_bad_listings_are_refused_field_by_field(
    client: httpx.AsyncClient, database: Database, overrides: dict, fields: dict
) -> None:
    token = await host_token(client)
    body = await gql(client, CREATE, {"input": listing_input(**overrides)}, headers=bearer(token))
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "fields": fields}


async def test_photos_must_be_the_hosts_own_uploads(
    client: httpx.AsyncClient, database: Database
) -> None:
    someone = (await register(client))["accessToken"]
    their_image = (await upload(client, image_bytes(), token=someone)).json()
    token = await host_token(client)
    body = await gql(
        client,
        CREATE,
        {"input": listing_input(photoUploadIds=[their_image["id"]])},
        headers=bearer(token),
    )
    assert body["errors"][0]["extensions"]["fields"] == {
        "photoUploadIds": "may only name uploads of the listing's host"
    }


async def test_only_the_host_or_an_admin_changes_a_listing(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    other_host = await host_token(client)
    variables = {"id": listing["id"], "input": {"title": "Mine now"}}
    assert error_code(await gql(client, UPDATE, variables, headers=bearer(other_host))) == (
        "FORBIDDEN"
    )

    admin_email = unique_email("admin")
    admin = await register(client, email=admin_email)
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == admin_email).values(roles=["GUEST", "ADMIN"])
        )
    body = await gql(client, UPDATE, variables, headers=bearer(admin["accessToken"]))
    assert body["data"]["updateListing"]["title"] == "Mine now"

    body = await gql(
        client,
        UPDATE,
        {
            "id": listing["id"],
            "input": {
                "nightlyPrice": {"amount": "12000", "currency": "JPY"},
                "cleaningFee": {"amount": "4000", "currency": "JPY"},
            },
        },
        headers=bearer(token),
    )
    assert body["data"]["updateListing"]["nightlyPrice"] == {"amount": "12000", "currency": "JPY"}


async def test_a_new_currency_needs_the_cleaning_fee_again(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)  # 95.50 EUR a night, 30.00 EUR to clean
    change = {"nightlyPrice": {"amount": "12000", "currency": "JPY"}}
    body = await gql(client, UPDATE, {"id": listing["id"], "input": change}, headers=bearer(token))
    [error] = body["errors"]
    assert error["extensions"]["fields"] == {"cleaningFee": "give it again in the new currency"}
    stored = (await gql(client, STORED, {"id": listing["id"]}, headers=bearer(token)))["data"]
    assert stored["listing"]["nightlyPrice"]["currency"] == "EUR"
    assert stored["listing"]["cleaningFee"]["amount"] == "30.00"


async def test_unlisting_and_deleting_hide_a_listing_from_the_public(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    await gql(
        client, UPDATE, {"id": listing["id"], "input": {"publish": False}}, headers=bearer(token)
    )
    assert (await gql(client, LISTING, {"id": listing["id"]}))["data"]["listing"] is None
    seen_by_host = await gql(client, LISTING, {"id": listing["id"]}, headers=bearer(token))
    assert seen_by_host["data"]["listing"]["status"] == "UNLISTED"

    deleted = await gql(client, DELETE, {"id": listing["id"]}, headers=bearer(token))
    assert deleted == {"data": {"deleteListing": True}}
    seen_after = await gql(client, LISTING, {"id": listing["id"]}, headers=bearer(token))
    assert seen_after["data"]["listing"] is None
    mine = await gql(client, MY_LISTINGS, headers=bearer(token))
    assert mine["data"]["myListings"] == {"totalCount": 0, "edges": []}


async def test_my_listings_include_drafts(client: httpx.AsyncClient, database: Database) -> None:
    token = await host_token(client)
    draft = await create(client, token, publish=False)
    published = await create(client, token)
    body = await gql(
        client,
        """{ myListings(first: 1) {
               totalCount edges { node { id status } } pageInfo { hasNextPage endCursor } } }""",
        headers=bearer(token),
    )
    page = body["data"]["myListings"]
    assert page["totalCount"] == 2
    assert page["edges"][0]["node"] == {"id": published["id"], "status": "PUBLISHED"}
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client,
        "query($a: String) { myListings(first: 5, after: $a) { edges { node { id status } } } }",
        {"a": page["pageInfo"]["endCursor"]},
        headers=bearer(token),
    )
    assert rest["data"]["myListings"]["edges"] == [{"node": {"id": draft["id"], "status": "DRAFT"}}]


async def test_the_calendar_blocks_and_prices_nights(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    start = date.today() + timedelta(days=10)
    days = [(start + timedelta(days=i)).isoformat() for i in range(6)]
    headers = bearer(token)
    blocked = await gql(
        client, BLOCK, {"id": listing["id"], "f": days[1], "t": days[3]}, headers=headers
    )
    assert blocked == {"data": {"blockDates": True}}
    await gql(
        client, SET_PRICES, {"id": listing["id"], "f": days[4], "t": days[5]}, headers=headers
    )
    calendar = await gql(client, CALENDAR, {"id": listing["id"], "f": days[0], "t": days[5]})
    nights = calendar["data"]["listing"]["calendar"]
    assert [n["available"] for n in nights] == [True, False, False, True, True]
    assert [n["price"]["amount"] for n in nights] == ["95.50"] * 4 + ["150.00"]

    await gql(client, UNBLOCK, {"id": listing["id"], "f": days[2], "t": days[3]}, headers=headers)
    calendar = await gql(client, CALENDAR, {"id": listing["id"], "f": days[0], "t": days[5]})
    assert [n["available"] for n in calendar["data"]["listing"]["calendar"]] == [
        True, False, True, True, True,
    ]  # fmt: skip


async def test_booked_nights_can_be_neither_blocked_nor_unblocked(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    listing_id = int(from_base64(listing["id"])[1])
    start = date.today() + timedelta(days=20)
    async with committed(database) as session:
        guest = await make_user(session)
        row = await session.get(Listing, listing_id)
        await make_booking(
            session, listing=row, guest=guest, check_in=start, check_out=start + timedelta(days=3)
        )
    variables = {
        "id": listing["id"],
        "f": (start + timedelta(days=2)).isoformat(),
        "t": (start + timedelta(days=5)).isoformat(),
    }
    assert error_code(await gql(client, BLOCK, variables, headers=bearer(token))) == "CONFLICT"
    assert error_code(await gql(client, UNBLOCK, variables, headers=bearer(token))) == "CONFLICT"
    async with database.read_session() as session:
        assert await session.scalar(select(Booking.status)) == "CONFIRMED"


async def test_calendar_ranges_are_bounded(client: httpx.AsyncClient, database: Database) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    today = date.today()
    too_long = {
        "id": listing["id"],
        "f": today.isoformat(),
        "t": (today + timedelta(days=400)).isoformat(),
    }
    backwards = {"id": listing["id"], "f": today.isoformat(), "t": today.isoformat()}
    for variables in (too_long, backwards):
        assert error_code(await gql(client, BLOCK, variables, headers=bearer(token))) == (
            "BAD_USER_INPUT"
        )
        assert error_code(await gql(client, CALENDAR, variables)) == "BAD_USER_INPUT"


async def test_the_amenity_catalogue(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ amenities { code name category } }")
    codes = {amenity["code"] for amenity in body["data"]["amenities"]}
    assert len(codes) >= 40
    assert {"wifi", "pool", "pets_allowed", "ev_charger", "wheelchair_accessible"} <= codes


async def test_nulls_for_required_fields_are_refused_on_update(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    listing = await create(client, token)
    body = await gql(
        client,
        UPDATE,
        {
            "id": listing["id"],
            "input": {"propertyType": None, "instantBook": None, "nightlyPrice": None},
        },
        headers=bearer(token),
    )
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {
            "propertyType": "must not be null",
            "instantBook": "must not be null",
            "nightlyPrice": "must not be null",
        },
    }


async def test_photos_keep_their_order_and_captions_and_times_can_be_set(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    first, second = [
        (await upload(client, image_bytes(), token=token)).json()["id"] for _ in range(2)
    ]
    created = await create(
        client,
        token,
        photos=[
            {"uploadId": second, "caption": "The terrace at dusk"},
            {"uploadId": first},
        ],
        checkInTime="16:30",
        checkOutTime="10:00",
    )
    assert [photo["caption"] for photo in created["photos"]] == ["The terrace at dusk", None]
    assert (created["checkInTime"], created["checkOutTime"]) == ("16:30", "10:00")

    body = await gql(
        client,
        UPDATE,
        {"id": created["id"], "input": {"photos": [{"uploadId": first, "caption": "x" * 201}]}},
        headers=bearer(token),
    )
    assert body["errors"][0]["extensions"]["fields"] == {
        "photos": "captions are at most 200 characters long"
    }
    body = await gql(
        client, CREATE, {"input": listing_input(checkInTime="3pm")}, headers=bearer(token)
    )
    assert body["errors"][0]["extensions"]["fields"] == {
        "checkInTime": 'must be a time of day, like "15:00"'
    }


STORED = f"query($id: ID!) {{ listing(id: $id) {{ {LISTING_FIELDS} description }} }}"


def photos(*captions: str | None) -> Callable[[str], list[dict]]:
    """Photos of one upload, known once the test made it, with these captions."""
    return lambda upload_id: [{"uploadId": upload_id, "caption": caption} for caption in captions]


def names(field: str, fields: dict[str, str]) -> bool:
    """``fields`` names ``field``, or a part of it (``photos.0.caption`` for ``photos``)."""
    return any(key == field or key.startswith(f"{field}.") for key in fields)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None, "amenities": []}, "title"),
        ({"title": "Loft\u0000", "amenities": ["wifi"]}, "title"),
        ({"description": "\u0000", "photos": photos(None)}, "description"),
        ({"address": {"city": "  ", "country": "PT"}, "photos": photos("Porch")}, "address.city"),
        (
            {"address": {"city": "Porto", "country": "XX"}, "photos": photos(None)},
            "address.country",
        ),
        (
            {"address": {"city": "Porto", "country": "PT", "line1": "R\u0000"}, "amenities": []},
            "address.line1",
        ),
        ({"cleaningFee": {"amount": "1e30", "currency": "EUR"}}, "cleaningFee.amount"),
        (
            {"cleaningFee": {"amount": "-1", "currency": "EUR"}, "amenities": []},
            "cleaningFee.amount",
        ),
        ({"photos": photos("a\u0000b")}, "photos"),
        ({"checkInTime": "3pm", "amenities": []}, "checkInTime"),
        ({"checkOutTime": "11:00+05:00", "amenities": []}, "checkOutTime"),
        ({"timeZone": "posixrules", "amenities": []}, "timeZone"),
        ({"nightlyPrice": {"amount": "1e999999999", "currency": "EUR"}}, "nightlyPrice.amount"),
        ({"minNights": 400, "amenities": []}, "minNights"),
        ({"latitude": 38.7, "longitude": 500.0, "amenities": []}, "longitude"),
        ({"maxNights": 1, "photos": photos(None)}, "maxNights"),
    ],
)
async def test_a_refused_update_changes_nothing_even_when_it_also_reads_the_database(
    client: httpx.AsyncClient, database: Database, change: dict, field: str
) -> None:
    # A value set on the listing before it was refused used to reach the database when a
    # later check (amenities, photos, currency) queried it: INTERNAL_SERVER_ERROR.
    token = await host_token(client)
    photo = (await upload(client, image_bytes(), token=token)).json()["id"]
    listing = await create(client, token, photos=[{"uploadId": photo, "caption": "Terrace"}])
    before = (await gql(client, STORED, {"id": listing["id"]}, headers=bearer(token)))["data"]
    change = {key: value(photo) if callable(value) else value for key, value in change.items()}
    body = await gql(client, UPDATE, {"id": listing["id"], "input": change}, headers=bearer(token))
    assert error_code(body) == "BAD_USER_INPUT", body
    assert names(field, body["errors"][0]["extensions"]["fields"]), body
    after = (await gql(client, STORED, {"id": listing["id"]}, headers=bearer(token)))["data"]
    assert after == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "Loft\u0000", "photos": photos(None)}, "title"),
        ({"address": {"city": "", "country": "PT"}, "photos": photos(None)}, "address.city"),
        ({"cleaningFee": {"amount": "1e30", "currency": "EUR"}}, "cleaningFee.amount"),
        ({"photos": photos("\u0000")}, "photos"),
    ],
)
async def test_a_refused_listing_is_not_stored(
    client: httpx.AsyncClient, database: Database, overrides: dict, field: str
) -> None:
    token = await host_token(client)
    photo = (await upload(client, image_bytes(), token=token)).json()["id"]
    overrides = {
        key: value(photo) if callable(value) else value for key, value in overrides.items()
    }
    body = await gql(client, CREATE, {"input": listing_input(**overrides)}, headers=bearer(token))
    assert error_code(body) == "BAD_USER_INPUT", body
    assert names(field, body["errors"][0]["extensions"]["fields"]), body
    mine = await gql(client, MY_LISTINGS, headers=bearer(token))
    assert mine["data"]["myListings"] == {"totalCount": 0, "edges": []}


async def test_null_photo_upload_ids_clear_the_photos(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await host_token(client)
    image = (await upload(client, image_bytes(), token=token)).json()
    created = await create(client, token, photoUploadIds=[image["id"]])
    assert len(created["photos"]) == 1
    for input_ in ({"photoUploadIds": None}, {"photoUploadIds": None, "photos": None}):
        body = await gql(
            client,
            "mutation($id: ID!, $input: UpdateListingInput!) {"
            " updateListing(id: $id, input: $input) { photos { id } } }",
            {"id": created["id"], "input": input_},
            headers=bearer(token),
        )
        assert body == {"data": {"updateListing": {"photos": []}}}, body
