"""Queries run by compiled plans (schema/compiled.py) answer exactly what graphql-core answers.

The whole suite runs in shadow mode (tests/helpers.py make_settings): every planned query is
executed by graphql-core too and a difference fails the test. These tests check that plans
are actually taken, that a broken plan is caught, and the cases plans hand back.
"""

from collections.abc import Iterator

import httpx
import pytest
import strawberry
from strawberry import relay

from db.database import Database
from schema import compiled
from schema.accounts import UserType
from schema.context import Info
from tests.factories import add_photo, make_listing, make_user
from tests.helpers import committed, gql

PAGE = """
query Page($first: Int, $withHost: Boolean!, $skipPhotos: Boolean = false) {
  searchListings(first: $first, sort: NEWEST) {
    __typename
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      ...Card
      alias: title
      host @include(if: $withHost) { __typename firstName avatarUrl }
      photos @skip(if: $skipPhotos) { url width }
      ... on Listing { amenities { code name } }
    } }
  }
}
fragment Card on Listing { id title propertyType rating reviewCount
  nightlyPrice { amount currency formatted } address { city country } }
"""


@pytest.fixture
async def page_of_listings(database: Database) -> None:
    async with committed(database) as session:
        hosts = [await make_user(session, roles=["GUEST", "HOST"]) for _ in range(3)]
        for i in range(7):
            listing = await make_listing(
                session, host=hosts[i % 3], title=f"place {i}", amenities=["wifi", "pool"]
            )
            await add_photo(session, listing, f"c{i}")


def planned() -> int:
    return compiled.totals()["planned"]


async def test_a_search_page_is_answered_by_a_plan(
    client: httpx.AsyncClient, page_of_listings: None
) -> None:
    for variables in (
        {"first": 5, "withHost": True},
        {"first": 5, "withHost": False, "skipPhotos": True},
        {"first": 7, "withHost": True, "skipPhotos": False},
    ):
        before = planned()
        body = await gql(client, PAGE, variables)
        assert "errors" not in body, body
        assert planned() == before + 1
        edges = body["data"]["searchListings"]["edges"]
        node = edges[0]["node"]
        assert len(edges) == variables["first"]
        assert ("host" in node) == variables["withHost"]
        assert ("photos" in node) != variables.get("skipPhotos", False)
        assert list(node)[:4] == ["id", "title", "propertyType", "rating"]


async def test_aliases_named_as_the_plans_own_code_are_answered_as_keys(
    client: httpx.AsyncClient, page_of_listings: None
) -> None:
    # A plan's fields become one generated function: the client's aliases are its data, so
    # none of them can stand for (or break) a name of that function.
    names = ["result", "source", "path", "run", "value", "K0", "C1", "TYPE_NAME", "None", "def"]
    pairs = zip(names, ["id", "title"] * 5, strict=True)
    fields = " ".join(f"{alias}: {field}" for alias, field in pairs)
    document = f"query {{ searchListings(first: 2) {{ edges {{ node {{ {fields} }} }} }} }}"
    before = planned()
    body = await gql(client, document)
    assert planned() == before + 1  # and shadow mode compared it with graphql-core's
    node = body["data"]["searchListings"]["edges"][0]["node"]
    assert list(node) == names
    assert node["result"] == node["path"] == node["value"] and node["source"] == node["run"]


async def test_objects_repeated_under_two_selections_are_completed_for_each(
    client: httpx.AsyncClient, page_of_listings: None
) -> None:
    # Each amenity is completed once per selection and reused down the page: the answer of
    # one selection never stands for the other's.
    document = """query { searchListings(first: 7) { edges { node {
      amenities { code } again: amenities { name code } } } } }"""
    before = planned()
    body = await gql(client, document)
    assert planned() == before + 1  # and shadow mode compared it with graphql-core's
    for edge in body["data"]["searchListings"]["edges"]:
        node = edge["node"]
        assert [a["code"] for a in node["amenities"]] == ["wifi", "pool"]
        assert [list(a) for a in node["again"]] == [["name", "code"]] * 2


async def test_a_document_of_very_many_objects_is_left_to_graphql_core(
    client: httpx.AsyncClient, page_of_listings: None
) -> None:
    # Each object selection is a function compiled once per document text: a document of
    # more than MAX_OBJECT_PLANS of them, sent once, would cost more to plan than to execute.
    card = "title nightlyPrice { amount } address { city } host { firstName } photos { url }"
    page = "searchListings(first: 1) { edges { node { " + card + " } } }"
    pages = [f"p{i}: {page}" for i in range(14)]
    before = compiled.totals()
    body = await gql(client, f"query {{ {' '.join(pages)} }}")  # 71 object selections
    assert "errors" not in body and len(body["data"]) == 14
    assert compiled.totals()["unplanned"] == before["unplanned"] + 1
    body = await gql(client, f"query {{ {' '.join(pages[:2])} }}")  # 11
    assert "errors" not in body and len(body["data"]) == 2
    assert compiled.totals()["planned"] == before["planned"] + 1


async def test_an_error_is_answered_by_graphql_core(client: httpx.AsyncClient) -> None:
    before = compiled.totals()
    body = await gql(client, "query { searchListings(first: -1) { totalCount } }")
    after = compiled.totals()
    assert body["errors"], body
    assert after["planned"] == before["planned"]
    assert after["reran"] == before["reran"] + 1


async def test_introspection_is_left_to_graphql_core(client: httpx.AsyncClient) -> None:
    before = compiled.totals()["unplanned"]
    body = await gql(client, "query { __schema { queryType { name } } }")
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    assert compiled.totals()["unplanned"] == before + 1


@pytest.fixture(params=["wrong value", "spurious failure"])
def broken_leaves(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Leaf completers of plans compiled from now on get one text wrong, or fail on it where
    graphql-core does not: the shadow mode must notice either. The mismatches this provokes
    are the test's to check, not the suite's."""
    original = compiled._leaf

    def broken(coerce, *, non_null):  # type: ignore[no-untyped-def]
        complete = original(coerce, non_null=non_null)

        def wrong(run, value, path):  # type: ignore[no-untyped-def]
            completed = complete(run, value, path)
            if completed == "place 3":
                if request.param == "spurious failure":
                    raise ValueError("a bug in a completer")
                return completed + "!"
            return completed

        return wrong

    monkeypatch.setattr(compiled, "_leaf", broken)
    before = len(compiled.shadow_mismatches)
    yield request.param
    del compiled.shadow_mismatches[before:]


async def test_a_broken_plan_fails_the_differential_check(
    client: httpx.AsyncClient, page_of_listings: None, broken_leaves: str
) -> None:
    # A document text of its own, so its plan is compiled with the broken completer.
    document = PAGE + f"# broken: {broken_leaves}\n"
    before = len(compiled.shadow_mismatches)
    body = await gql(client, document, {"first": 7, "withHost": True})
    assert "place 3" not in str(body.get("data")), body
    assert body.get("errors"), body
    assert compiled.shadow_mismatches[before:] == [document]


def test_a_relay_id_is_encoded_as_strawberry_encodes_it() -> None:
    @strawberry.type
    class Plain(relay.Node):
        plain_id: relay.NodeID[int]

    @strawberry.type
    class Own(relay.Node):
        own_id: relay.NodeID[int]

        @classmethod
        def resolve_id(cls, root: "Own", *, info: object) -> str:  # type: ignore[override]
            return "elsewhere"

    assert compiled._relay_id("Plain")(Plain(plain_id=7)) == str(
        relay.GlobalID(type_name="Plain", node_id="7")
    )
    # A node that resolves its id its own way is left to strawberry (the plan fails over).
    with pytest.raises(compiled._Failed):
        compiled._relay_id("Own")(Own(own_id=7))


async def test_a_resolver_marked_as_reading_only_the_context_that_reads_more_is_rerun(
    client: httpx.AsyncClient, page_of_listings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan hands a ``reads_only_context`` resolver an info that holds the context alone:
    one that reads more fails the plan, and graphql-core answers it, right."""
    resolver = UserType.__strawberry_definition__.get_field("avatar_url").base_resolver  # type: ignore[union-attr]

    @compiled.reads_only_context
    def avatar_url(self: UserType, info: Info) -> str | None:
        return info.field_name

    monkeypatch.setattr(resolver, "wrapped_func", avatar_url)
    # As in production: the shadow mode counts any plan failed without an error as a bug.
    for plans in list(compiled._plans.values()):
        monkeypatch.setattr(plans, "shadow", False)
    before = compiled.totals()
    body = await gql(
        client, "query { searchListings(first: 2) { edges { node { host { avatarUrl } } } } }"
    )
    after = compiled.totals()
    assert body == {
        "data": {
            "searchListings": {
                "edges": [{"node": {"host": {"avatarUrl": "avatarUrl"}}}] * 2,
            }
        }
    }
    assert after["reran"] == before["reran"] + 1
