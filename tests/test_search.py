"""Search returns exactly the right listings, in the right order, a page at a time."""

from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update
from strawberry.relay import to_base64

from db.database import Database
from db.models import BlockedNight, Listing
from services import listings as listings_service
from tests.accounts_helpers import bearer, register
from tests.factories import add_photo, make_booking, make_listing, make_user
from tests.helpers import StatementCounter, committed, gql

SEARCH = """
query($filter: ListingFilter, $sort: ListingSort, $first: Int, $after: String) {
  searchListings(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    edges { cursor node { id title } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SOON = date.today() + timedelta(days=30)


async def titles(client: httpx.AsyncClient, filter: dict | None = None, **kwargs) -> list[str]:
    body = await gql(client, SEARCH, {"filter": filter, **kwargs})
    assert "errors" not in body, body
    return [edge["node"]["title"] for edge in body["data"]["searchListings"]["edges"]]


@pytest.fixture
async def host(database: Database):
    async with committed(database) as session:
        return await make_user(session, roles=["GUEST", "HOST"])


async def listings(database: Database, host, *specs: dict) -> list[Listing]:
    async with committed(database) as session:
        return [await make_listing(session, host=host, **spec) for spec in specs]


async def test_location_matches_city_region_country_and_title_without_accents(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(
        database,
        host,
        {"title": "Lisbon loft", "address": {"city": "Lisboa", "country": "PT"}},
        {
            "title": "Favela view",
            "address": {"city": "São Paulo", "region": "SP", "country": "BR"},
            "latitude": -23.55,
            "longitude": -46.63,
        },
        {"title": "Château near Lyon", "address": {"city": "Lyon", "country": "FR"}},
    )
    assert await titles(client, {"location": "lisboa"}) == ["Lisbon loft"]
    assert await titles(client, {"location": "SAO PAULO"}) == ["Favela view"]
    assert await titles(client, {"location": "brazil"}) == ["Favela view"]
    assert await titles(client, {"location": "chateau"}) == ["Château near Lyon"]
    assert await titles(client, {"location": "Lis"}) == ["Lisbon loft"]  # as the user types
    assert await titles(client, {"location": "Oslo"}) == []


async def test_near_finds_exactly_what_is_inside_the_radius(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    # One degree of latitude is about 111.2 km.
    await listings(
        database,
        host,
        {"title": "centre", "latitude": 38.72, "longitude": -9.14},
        {"title": "9 km north", "latitude": 38.72 + 9 / 111.2, "longitude": -9.14},
        {"title": "11 km north", "latitude": 38.72 + 11 / 111.2, "longitude": -9.14},
    )
    near = {"near": {"latitude": 38.72, "longitude": -9.14, "radiusKm": 10}}
    assert await titles(client, near, sort="DISTANCE") == ["centre", "9 km north"]


async def test_dates_exclude_blocked_and_booked_nights_only(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    free, blocked, booked, canceled, adjacent = await listings(
        database,
        host,
        *({"title": name} for name in ("free", "blocked", "booked", "canceled", "adjacent")),
    )
    async with committed(database) as session:
        guest = await make_user(session)
        session.add(BlockedNight(listing_id=blocked.id, night=SOON + timedelta(days=2)))
        await make_booking(
            session, listing=booked, guest=guest, check_in=SOON - timedelta(days=1),
            check_out=SOON + timedelta(days=1),
        )  # fmt: skip
        await make_booking(
            session, listing=canceled, guest=guest, check_in=SOON, check_out=SOON + timedelta(3),
            status="CANCELED",
        )  # fmt: skip
        # Leaves the morning the search's stay begins: no night is shared.
        await make_booking(
            session, listing=adjacent, guest=guest, check_in=SOON - timedelta(days=3),
            check_out=SOON,
        )  # fmt: skip
    stay = {"checkIn": SOON.isoformat(), "checkOut": (SOON + timedelta(days=3)).isoformat()}
    assert sorted(await titles(client, stay)) == ["adjacent", "canceled", "free"]


async def test_minimum_and_maximum_nights_apply_to_dated_searches(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(
        database,
        host,
        {"title": "weekly", "min_nights": 7},
        {"title": "short stays", "max_nights": 2},
        {"title": "anything"},
    )
    stay = {"checkIn": SOON.isoformat(), "checkOut": (SOON + timedelta(days=3)).isoformat()}
    assert sorted(await titles(client, stay)) == ["anything"]


async def test_guests_amenities_types_and_instant_book(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(
        database,
        host,
        {"title": "big", "max_guests": 8, "amenities": ["wifi", "pool", "pets_allowed"]},
        {"title": "small", "max_guests": 2, "amenities": ["wifi", "pool"]},
        {"title": "room", "property_type": "PRIVATE_ROOM", "instant_book": False},
    )
    assert await titles(client, {"guests": 5}) == ["big"]
    assert sorted(await titles(client, {"amenities": ["wifi", "pool"]})) == ["big", "small"]
    assert await titles(client, {"amenities": ["pool", "pets_allowed"]}) == ["big"]
    assert await titles(client, {"propertyTypes": ["PRIVATE_ROOM"]}) == ["room"]
    assert await titles(client, {"instantBook": False}) == ["room"]
    body = await gql(client, SEARCH, {"filter": {"amenities": ["moat"]}})
    assert body["errors"][0]["extensions"]["fields"] == {
        "filter.amenities": "unknown amenities: moat"
    }


async def test_price_filters_compare_across_currencies(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    # At the seeded rates: 100 EUR = 108 USD; 15,000 JPY = 100.50 USD; 80 USD.
    await listings(
        database,
        host,
        {"title": "euro", "nightly_price": {"amount": Decimal("100"), "currency": "EUR"}},
        {"title": "yen", "nightly_price": {"amount": Decimal("15000"), "currency": "JPY"}},
        {"title": "dollar", "nightly_price": {"amount": Decimal("80"), "currency": "USD"}},
    )
    between = {"minPrice": "90", "maxPrice": "105", "currency": "USD"}
    assert await titles(client, between) == ["yen"]
    in_euros = {"maxPrice": "93", "currency": "EUR"}  # 93 EUR = 100.44 USD
    assert await titles(client, in_euros, sort="PRICE_ASC") == ["dollar"]
    assert await titles(client, {}, sort="PRICE_ASC") == ["dollar", "yen", "euro"]
    assert await titles(client, {}, sort="PRICE_DESC") == ["euro", "yen", "dollar"]
    # The rate is read in the search's statement: with none, nothing matches, and the empty
    # page is refused for its currency, not answered empty (counted or not).
    without_count = "query($f: ListingFilter) { searchListings(filter: $f) { edges { cursor } } }"
    for document, variables in (
        (SEARCH, {"filter": {"maxPrice": "500", "currency": "XYZ"}}),
        (without_count, {"f": {"maxPrice": "500", "currency": "XYZ"}}),
    ):
        body = await gql(client, document, variables)
        assert body["errors"][0]["extensions"]["fields"] == {
            "filter.currency": "is not a currency Roost prices in"
        }, body


async def test_sorts_by_rating_and_newest(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    first, second, third = await listings(
        database, host, {"title": "first"}, {"title": "second"}, {"title": "third"}
    )
    async with committed(database) as session:
        shown = ((first, "4.90", 10), (second, "3.50", 3), (third, "4.00", 2))
        for listing, rating, reviews in shown:
            await session.execute(
                update(Listing)
                .where(Listing.id == listing.id)
                .values(rating_avg=Decimal(rating), review_count=reviews)
            )
    # Two reviews show no rating yet: the listing sorts with the unrated ones.
    assert await titles(client, {}, sort="RATING") == ["first", "second", "third"]
    assert await titles(client, {}, sort="NEWEST") == ["third", "second", "first"]
    assert await titles(client, {}) == ["first", "second", "third"]  # relevance: best reviewed


async def test_pagination_walks_every_result_once_even_with_ties(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    specs = [
        {"title": f"flat {i}", "nightly_price": {"amount": Decimal(50 + i % 3), "currency": "USD"}}
        for i in range(11)
    ]
    await listings(database, host, *specs)
    # Near a point and sorted by newest, a page's ids come from an index before its rows.
    near = {"near": {"latitude": 38.7223, "longitude": -9.1393, "radiusKm": 5}}
    sorts = ("PRICE_ASC", "PRICE_DESC", "NEWEST", "RELEVANCE", "RATING")
    for filter, sort in [(None, sort) for sort in sorts] + [
        (near, sort) for sort in (*sorts, "DISTANCE")
    ]:
        seen: list[str] = []
        after = None
        while True:
            variables = {"filter": filter, "first": 3, "after": after, "sort": sort}
            body = await gql(client, SEARCH, variables)
            page = body["data"]["searchListings"]
            assert page["totalCount"] == 11
            seen += [edge["node"]["title"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert sorted(seen) == sorted(spec["title"] for spec in specs), (filter, sort)
        assert seen == await titles(client, filter, first=20, sort=sort), (filter, sort)


async def test_a_page_is_stable_when_listings_are_added(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, *({"title": f"old {i}"} for i in range(4)))
    first_page = (await gql(client, SEARCH, {"first": 2, "sort": "NEWEST"}))["data"]
    await listings(database, host, {"title": "brand new"})
    after = first_page["searchListings"]["pageInfo"]["endCursor"]
    rest = await titles(client, None, first=10, after=after, sort="NEWEST")
    assert rest == ["old 1", "old 0"]


async def test_unlisted_drafts_and_deleted_listings_never_appear(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    shown, unlisted, deleted = await listings(
        database, host, {"title": "shown"}, {"title": "unlisted"}, {"title": "deleted"}
    )
    await listings(database, host, {"title": "draft", "publish": False})
    async with committed(database) as session:
        await session.execute(
            update(Listing).where(Listing.id == unlisted.id).values(status="UNLISTED")
        )
        await session.execute(
            update(Listing).where(Listing.id == deleted.id).values(deleted_at=date.today())
        )
    body = await gql(client, SEARCH, {"filter": None})
    assert [e["node"]["title"] for e in body["data"]["searchListings"]["edges"]] == ["shown"]
    assert body["data"]["searchListings"]["totalCount"] == 1


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"filter": {"checkIn": SOON.isoformat()}}, "filter.checkOut"),
        (
            {"filter": {"checkIn": SOON.isoformat(), "checkOut": SOON.isoformat()}},
            "filter.checkOut",
        ),
        (
            {"filter": {"near": {"latitude": 0, "longitude": 0, "radiusKm": 5000}}},
            "filter.near.radiusKm",
        ),
        ({"sort": "DISTANCE"}, "sort"),
        ({"filter": {"minPrice": "10", "maxPrice": "5"}}, "filter.maxPrice"),
        ({"filter": {"maxPrice": "50", "currency": "XYZ"}}, "filter.currency"),
        # The filter is refused before the cursor, as it is read first.
        ({"filter": {"maxPrice": "50", "currency": "XYZ"}, "after": "x"}, "filter.currency"),
    ],
)
async def test_bad_search_input_is_bad_user_input(
    client: httpx.AsyncClient, database: Database, variables: dict, field: str
) -> None:
    body = await gql(client, SEARCH, variables)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert field in error["extensions"]["fields"]


async def test_a_cursor_of_another_sort_is_refused(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, {"title": "a"}, {"title": "b"})
    page = (await gql(client, SEARCH, {"first": 1, "sort": "NEWEST"}))["data"]["searchListings"]
    body = await gql(
        client, SEARCH, {"first": 1, "sort": "PRICE_ASC", "after": page["pageInfo"]["endCursor"]}
    )
    assert body["errors"][0]["extensions"]["fields"] == {"after": "is not a cursor of this search"}


PAGE_WITH_NESTED = """
query($first: Int) {
  searchListings(first: $first) {
    edges { node {
      id title nightlyPrice { amount currency formatted } address { city country }
      host { id firstName avatarUrl } photos { url width } amenities { code name }
    } }
  }
}
"""


async def test_a_page_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    async with committed(database) as session:
        hosts = [await make_user(session, roles=["GUEST", "HOST"]) for _ in range(5)]
        made = [
            await make_listing(
                session, host=hosts[i % 5], title=f"l{i}", amenities=["wifi", "pool"]
            )
            for i in range(50)
        ]
        for i, listing in enumerate(made):
            await add_photo(session, listing, f"k{i}")
    await gql(client, PAGE_WITH_NESTED, {"first": 1})  # warms the amenity catalogue

    counts = {}
    for size in (5, 50):
        with StatementCounter(database) as counter:
            body = await gql(client, PAGE_WITH_NESTED, {"first": size})
        edges = body["data"]["searchListings"]["edges"]
        assert len(edges) == size and all(edge["node"]["photos"] for edge in edges)
        counts[size] = counter.count
    # The cache generation, then one statement for the page with its hosts and photos; the
    # amenity catalogue is read once per process.
    assert counts[5] == counts[50] == 2, counts


async def test_listing_node_ids_resolve(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    [listing] = await listings(database, host, {"title": "by node"})
    body = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Listing { title } } }",
        {"id": to_base64("Listing", listing.id)},
    )
    assert body == {"data": {"node": {"title": "by node"}}}


async def test_a_repeated_anonymous_search_comes_from_the_cache(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, {"title": "cached"})
    variables = {"filter": {"location": "Lisbon"}}
    first = await gql(client, SEARCH, variables)
    with StatementCounter(database) as counter:
        again = await gql(client, SEARCH, variables)
    assert again == first
    assert counter.count == 1  # only the generation is read


async def test_a_change_to_a_listing_or_its_calendar_shows_at_once(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    [listing] = await listings(database, host, {"title": "soon taken"})
    stay = {"checkIn": SOON.isoformat(), "checkOut": (SOON + timedelta(days=2)).isoformat()}
    assert await titles(client, stay) == ["soon taken"]  # now cached

    async with committed(database) as session:
        await listings_service.block_nights(
            session, actor=host, listing_id=listing.id, start=SOON, end=SOON + timedelta(days=1)
        )
    assert await titles(client, stay) == []

    async with committed(database) as session:
        await make_listing(session, host=host, title="just added")
    assert await titles(client, stay) == ["just added"]


async def test_signed_in_searches_are_not_cached(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, {"title": "private view"})
    headers = bearer((await register(client))["accessToken"])
    await gql(client, SEARCH, {"first": 5}, headers=headers)
    with StatementCounter(database) as counter:
        await gql(client, SEARCH, {"first": 5}, headers=headers)
    assert any("FROM listing l" in statement for statement in counter.statements)


async def test_total_count_is_found_inside_fragments(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, {"title": "one"}, {"title": "two"})
    body = await gql(
        client,
        """
        fragment Totals on ListingConnection { totalCount }
        query {
          a: searchListings(first: 1) { ...Totals }
          b: searchListings(first: 1) { ... on ListingConnection { totalCount } }
          c: searchListings(first: 1) { edges { node { title } } }
        }
        """,
    )
    assert body["data"]["a"] == {"totalCount": 2}
    assert body["data"]["b"] == {"totalCount": 2}
    assert len(body["data"]["c"]["edges"]) == 1


COUNTED = """
query($after: String) {
  searchListings(first: 2, after: $after, sort: NEWEST) {
    totalCount totalCountIsExact pageInfo { hasNextPage endCursor } edges { node { title } }
  }
}
"""


async def test_the_count_is_the_searchs_on_every_page_even_past_the_last(
    client: httpx.AsyncClient, database: Database, host
) -> None:
    await listings(database, host, {"title": "a"}, {"title": "b"}, {"title": "c"})
    first = (await gql(client, COUNTED))["data"]["searchListings"]
    assert (first["totalCount"], first["totalCountIsExact"], len(first["edges"])) == (3, True, 2)
    after = first["pageInfo"]["endCursor"]
    last = (await gql(client, COUNTED, {"after": after}))["data"]["searchListings"]
    assert [edge["node"]["title"] for edge in last["edges"]] == ["a"]
    past = (await gql(client, COUNTED, {"after": last["pageInfo"]["endCursor"]}))["data"]
    assert past["searchListings"] == {
        "totalCount": 3,
        "totalCountIsExact": True,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }
