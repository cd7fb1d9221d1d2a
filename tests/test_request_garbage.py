"""A request's objects are freed when it ends, by reference counting, not left in reference
cycles for the cyclic garbage collector: its collections hold every request of the process
while they run, and the more a request leaves behind, the more often and the longer they come
(schema/execution.py, schema/limits.py)."""

import gc
from collections import Counter

import httpx

from db.database import Database
from tests.accounts_helpers import bearer, register
from tests.factories import make_listing, make_user
from tests.helpers import committed, gql

SEARCH_PAGE = """
query($filter: ListingFilter) {
  searchListings(filter: $filter, first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id title propertyType rating reviewCount
      nightlyPrice { amount currency formatted }
      address { city country }
      host { firstName avatarUrl }
      photos { url }
      amenities { code }
    } }
  }
}
"""
# The test's own client (httpx) makes cycles of its own; the server's objects are what count.
CLIENT_MODULES = ("httpx", "h11", "anyio", "asyncio")


async def test_search_pages_leave_no_reference_cycles(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with committed(database) as session:
        host = await make_user(session, roles=["GUEST", "HOST"])
        for number in range(3):
            await make_listing(session, host=host, title=f"Loft {number}")
    # Signed in: an anonymous search may be answered from the search cache, executing nothing.
    headers = bearer((await register(client, email="garbage@example.com"))["accessToken"])
    variables = {"filter": {"location": "Lisbon"}}
    for _ in range(3):  # caches filled, documents checked
        body = await gql(client, SEARCH_PAGE, {"filter": None}, headers=headers)
        assert len(body["data"]["searchListings"]["edges"]) == 3, body
        await gql(client, SEARCH_PAGE, variables, headers=headers)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            await gql(client, SEARCH_PAGE, {"filter": None}, headers=headers)
            await gql(client, SEARCH_PAGE, variables, headers=headers)
        gc.collect()
        left = Counter(
            type(thing).__module__ + "." + type(thing).__qualname__
            for thing in gc.garbage
            if not type(thing).__module__.startswith(CLIENT_MODULES)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # A handful of builtins may be anyone's; a request's executor, context, loaders and rows
    # (hundreds of objects a page) must not be there.
    assert not [kind for kind in left if not kind.startswith("builtins.")], left
    assert sum(left.values()) <= 40 * 10, left
