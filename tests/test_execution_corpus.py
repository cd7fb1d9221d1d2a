"""The compiled execution path answers every query exactly as graphql-core does (issue 16).

A corpus of query documents (tests/query_corpus.py: generated from the schema, the search page
of bench/search_sql.py, and the query documents of the test suite) runs on the same data through
``build_schema(compiled_queries=False)`` and ``build_schema()``, as four viewers, and every
response must be the same bytes a client would receive: data and errors (message, path,
locations, extensions), after the app's own presentation of errors. Two differences are
graphql-core's own from run to run, so they pass: errors of concurrent fields listed in another
order, and, when failing non-null root fields null the whole ``data``, the error of another of
them (each checked to be the error graphql-core gives for that field).
"""

import importlib
import inspect
import re
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson
import pytest
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    OperationDefinitionNode,
    parse,
)
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from strawberry.http import process_result
from strawberry.relay import to_base64

from app.graphql_view import RoostGraphQL
from db.database import Database
from db.models import Base
from schema.context import Context
from schema.errors import present_error
from schema.root import RoostSchema, build_schema
from tests.accounts_helpers import bearer, register
from tests.booking_helpers import a_place, booked
from tests.helpers import FakeClock, gql
from tests.listing_helpers import create
from tests.query_corpus import (
    Case,
    Generator,
    Values,
    hostile_cases,
    search_cases,
    suite_cases,
)
from tests.receipt_helpers import an_admin
from tests.review_helpers import a_paid_stay, complete_stays, reviewed

VIEWERS = ("anonymous", "guest", "host", "admin")
CITY = "Lisbon"


def ordinary_schema() -> RoostSchema:
    """The schema on graphql-core's executor: ``compiled_queries=False`` once build_schema
    offers the choice, and until then the only schema there is."""
    options: dict[str, Any] = {}
    if "compiled_queries" in inspect.signature(build_schema).parameters:
        options["compiled_queries"] = False
    return build_schema(**options)


@dataclass
class Seed:
    headers: dict[str, dict[str, str]]
    values: Values


async def seeded(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, node_types: list[str]
) -> Seed:
    """A few users, listings, bookings, a review, a message, a wishlist and a dispute, made
    through the API as the app makes them."""
    address = {"line1": "Rua da Rosa 5", "city": CITY, "country": "PT"}
    place = await a_place(client, address=address, title="Rosa flat")
    await create(
        client,
        place.host,
        title="Porto house",
        address={"line1": "Rua das Flores 9", "city": "Porto", "country": "PT"},
        latitude=41.1579,
        longitude=-8.6291,
    )
    stay = await a_paid_stay(client, place, 1, 3)
    await complete_stays(app, clock, 3)
    await reviewed(client, stay, rating=4, comment="Quiet and bright.")
    await booked(client, place, 10, 12)
    sent = await gql(
        client,
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        {"input": {"bookingId": stay.booking_id, "body": "Where are the keys?"}},
        headers=place.as_guest,
    )
    assert "errors" not in sent, sent
    wishlist = await gql(
        client, 'mutation { createWishlist(name: "Summer") { id } }', headers=place.as_guest
    )
    wishlist_id = wishlist["data"]["createWishlist"]["id"]
    added = await gql(
        client,
        "mutation($w: ID!, $l: ID!) { addToWishlist(wishlistId: $w, listingId: $l) { id } }",
        {"w": wishlist_id, "l": place.listing_id},
        headers=place.as_guest,
    )
    assert "errors" not in added, added
    shared = await gql(
        client,
        "mutation($id: ID!) { shareWishlist(id: $id) { token } }",
        {"id": wishlist_id},
        headers=place.as_guest,
    )
    token = shared["data"]["shareWishlist"]["token"]
    disputed = await gql(
        client,
        "mutation($b: ID!, $m: String!) { openDispute(bookingId: $b, message: $m) { id } }",
        {"b": stay.booking_id, "m": "The heating did not work."},
        headers=place.as_guest,
    )
    assert "errors" not in disputed, disputed
    admin = await an_admin(client, app.state.database)
    # A user who has nothing: someone else's id for every viewer.
    await register(client, first_name="Rui")
    return Seed(
        headers={
            "anonymous": {},
            "guest": bearer(place.guest),
            "host": bearer(place.host),
            "admin": admin,
        },
        values=Values(
            ids=await node_ids(app.state.database, node_types),
            today=clock.now.date(),
            city=CITY,
            share_tokens=[token],
            audit_actions=await audit_actions(app.state.database),
        ),
    )


def _table_of(type_name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", type_name).lower()


async def node_ids(database: Database, type_names: list[str]) -> dict[str, list[str]]:
    """Global ids of what the data holds, by type: a few of each."""
    tables = Base.metadata.tables
    found: dict[str, list[str]] = {}
    async with database.sessionmaker() as session:
        for type_name in type_names:
            table = {"User": "user_account"}.get(type_name, _table_of(type_name))
            if table not in tables:
                continue
            rows = await session.execute(
                text(f'SELECT id FROM "{table}" ORDER BY id LIMIT 3')  # noqa: S608 (our names)
            )
            found[type_name] = [to_base64(type_name, row.id) for row in rows]
    return found


async def audit_actions(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        rows = await session.execute(text("SELECT DISTINCT action FROM audit_entry LIMIT 3"))
        return sorted(row.action for row in rows)


class Runner:
    """Runs one document on one schema as the endpoint would, answering the response bytes."""

    def __init__(self, app: Starlette, headers: dict[str, dict[str, str]]) -> None:
        self.app = app
        self.headers = headers
        self.view = graphql_view(app)

    def request(self, viewer: str) -> Request:
        return Request(
            {
                "type": "http",
                "app": self.app,
                "method": "POST",
                "path": "/graphql",
                "query_string": b"",
                "client": ("127.0.0.1", 40000),
                "headers": [
                    (name.lower().encode(), value.encode())
                    for name, value in {
                        "user-agent": "corpus",
                        **self.headers[viewer],
                    }.items()
                ],
            }
        )

    async def context(self, viewer: str) -> Context:
        # The view's own get_context: the same authentication, fresh loaders every time.
        context: Context = await self.view.get_context(self.request(viewer), None)
        return context

    async def run(self, schema: RoostSchema, case: Case, viewer: str) -> bytes:
        result = await schema.execute(
            case.query,
            variable_values=case.variables,
            context_value=await self.context(viewer),
            operation_name=case.operation_name,
        )
        if result.errors:
            # As the view presents what escaped the schema's extension (idempotent).
            result.errors = [
                present_error(error, validation_errors=frozenset(), hide_suggestions=False)
                for error in result.errors
            ]
        return orjson.dumps(process_result(result))


def plan_totals() -> Counter[str]:
    """How the compiled path's executions went so far (planned, or left to graphql-core), where
    the compiled path reports it (schema/compiled.py); empty before it exists."""
    try:
        module = importlib.import_module("schema.compiled")
    except ImportError:
        return Counter()
    totals: Callable[[], dict[str, int]] | None = getattr(module, "totals", None)
    return Counter(totals()) if totals is not None else Counter()


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two decoded responses first differ, and how."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'ordinary' if key in a else 'compiled'}"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}/{key}")
        if list(a) != list(b):
            return f"{path}: keys in another order: {list(a)} vs {list(b)}"
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}/{index}")
    return f"{path or '/'}: ordinary {a!r:.300} vs compiled {b!r:.300}"


def mismatch(case: Case, viewer: str, ordinary: bytes, compiled: bytes) -> str:
    where = first_difference(orjson.loads(ordinary), orjson.loads(compiled))
    return (
        f"[{case.source}] {case.name} as {viewer}\n  at {where}\n"
        f"  variables: {case.variables}\n  document: {case.query.strip()[:600]}"
    )


SORTED = orjson.OPT_SORT_KEYS


def _errors_sorted(response: bytes) -> Any:
    decoded = orjson.loads(response)
    decoded.get("errors", []).sort(key=lambda error: orjson.dumps(error, option=SORTED))
    return decoded


@dataclass
class Comparison:
    mismatches: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    codes: Counter[str] = field(default_factory=Counter)
    """How often graphql-core answered each error code (and a null ``data``)."""
    allowed: dict[str, list[str]] = field(default_factory=dict)
    """Root field -> the viewers it answered without refusing them."""
    cursors: list[tuple[Case, str, str]] = field(default_factory=list)
    """(case, viewer, the end cursor of the root connection's first page) to read on from."""


async def compare(
    runner: Runner,
    ordinary: RoostSchema,
    compiled: RoostSchema,
    plan: list[tuple[Case, str]],
) -> Comparison:
    """Every (case, viewer) on both schemas: the mismatches, and how the answers went."""
    done = Comparison()
    for case, viewer in plan:
        started = time.perf_counter()
        expected = await runner.run(ordinary, case, viewer)
        actual = await runner.run(compiled, case, viewer)
        source = "tests/*.py" if case.source.startswith("tests/") else case.source
        done.seconds[source] += time.perf_counter() - started
        if expected == actual:
            pass
        elif _errors_sorted(expected) == _errors_sorted(actual):
            # Errors of fields resolved concurrently are listed as they happen to finish:
            # graphql-core itself lists them in either order from one run to the next, and
            # the spec gives their order no meaning.
            done.outcomes["errors in another order"] += 1
        elif await _graphql_core_also_answers(runner, ordinary, case, viewer, expected, actual):
            # Two concurrent root fields failing into a null `data`: graphql-core reports the
            # error of whichever failed first, so it answers either way from run to run.
            done.outcomes["one of graphql-core's answers"] += 1
        else:
            done.mismatches.append(mismatch(case, viewer, expected, actual))
        refused = any(code in expected for code in (b'"UNAUTHENTICATED"', b'"FORBIDDEN"'))
        if (cursor := _end_cursor(expected, case.field)) is not None:
            done.cursors.append((case, viewer, cursor))
        if not refused:
            done.allowed.setdefault(case.field, []).append(viewer)
        done.outcomes["with errors" if b'"errors"' in expected else "clean"] += 1
        answer = orjson.loads(expected)
        for error in answer.get("errors", []):
            done.codes[(error.get("extensions") or {}).get("code", "no code")] += 1
        if answer.get("errors") and answer.get("data") is None:
            done.codes["(data null)"] += 1
    return done


async def _graphql_core_also_answers(
    runner: Runner, ordinary: RoostSchema, case: Case, viewer: str, expected: bytes, answer: bytes
) -> bool:
    """Whether graphql-core could have answered ``answer`` too. Root fields run concurrently,
    and when failures of non-null ones null the whole ``data``, graphql-core reports the
    error of whichever failed first: which one depends on timing, from run to run."""
    ours, theirs = orjson.loads(expected), orjson.loads(answer)
    if ours.get("data") is not None or theirs.get("data") is not None:
        return False
    if len(ours.get("errors", [])) != len(theirs.get("errors", [])):
        return False
    for error in theirs.get("errors", []):
        alone = _only_root_field(case.query, (error.get("path") or [None])[0])
        if alone is None:
            return False
        solo = replace(case, query=alone)
        if error not in orjson.loads(await runner.run(ordinary, solo, viewer)).get("errors", []):
            return False
    return True


def _only_root_field(query: str, response_name: object) -> str | None:
    """The document with every other root field blanked out, so what is left keeps its
    place (the locations of its errors); __typename stays, for the variables it uses."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return None
    blanked = query
    kept = False
    for selection in operations[0].selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.loc is None:
            return None
        name = (selection.alias or selection.name).value
        if name == response_name:
            kept = True
        elif selection.name.value != "__typename":
            start, end = selection.loc.start, selection.loc.end
            blanked = blanked[:start] + " " * (end - start) + blanked[end:]
    return blanked if kept else None


def _end_cursor(answer: bytes, root_field: str) -> str | None:
    if b'"endCursor"' not in answer:
        return None
    page = (orjson.loads(answer).get("data") or {}).get(root_field)
    if not isinstance(page, dict) or not isinstance(page.get("pageInfo"), dict):
        return None
    cursor = page["pageInfo"].get("endCursor")
    return cursor if isinstance(cursor, str) else None


def _pick(options: Sequence[str], case: Case) -> str:
    # By the document's text: both runs of a document with @skip/@include go to one viewer.
    return options[zlib.crc32(case.query.encode()) % len(options)]


def first_plan(cases: list[Case]) -> list[tuple[Case, str]]:
    """A field's whole-depth document as every viewer, the suite's documents as two, each
    search and worst document of the bench as one (they answer every viewer alike)."""
    plan: list[tuple[Case, str]] = []
    for case in cases:
        if case.source == "generated" and case.name.endswith(": full"):
            plan.extend((case, viewer) for viewer in VIEWERS)
        elif case.source.startswith("tests/"):
            # Two viewers apart: one signed in, and one of anonymous or the admin.
            picked = VIEWERS.index(_pick(VIEWERS, case))
            plan.extend((case, VIEWERS[(picked + k) % len(VIEWERS)]) for k in (0, 2))
        elif case.source.startswith("bench/"):
            plan.append((case, _pick(VIEWERS, case)))
    return plan


def second_plan(cases: list[Case], allowed: dict[str, list[str]]) -> list[tuple[Case, str]]:
    """Each generated variant as one viewer the field serves (any, for a field that refuses
    everyone), so arguments and selections are checked past the permission checks."""
    return [
        (case, _pick(allowed.get(case.field) or VIEWERS, case))
        for case in cases
        if case.source == "generated" and not case.name.endswith(": full")
    ]


@pytest.fixture
async def corpus_world(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> tuple[Runner, Seed, RoostSchema]:
    ordinary = ordinary_schema()
    node = ordinary._schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    node_types = [t.name for t in ordinary._schema.get_possible_types(node)]
    seed = await seeded(app, client, clock, node_types)
    return Runner(app, seed.headers), seed, ordinary


def graphql_view(app: Starlette) -> RoostGraphQL:
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, RoostGraphQL):
            return endpoint
    raise AssertionError("the app has no GraphQL view")


def all_cases(schema: RoostSchema, seed: Seed) -> tuple[list[Case], Counter[str], list[str]]:
    generator = Generator(schema._schema, seed.values)
    generated = generator.corpus()
    suite, skipped = suite_cases(schema._schema, generator)
    searched = search_cases(CITY, seed.values.today)
    cases = [*generated, *searched, *hostile_cases(), *suite]
    sources = Counter(
        case.source if not case.source.startswith("tests/") else "tests/*.py" for case in cases
    )
    left_out = [f"suite documents left out: {dict(skipped)}", *generator.uncovered]
    return cases, sources, left_out


async def test_compiled_queries_answer_as_graphql_core(
    corpus_world: tuple[Runner, Seed, RoostSchema],
) -> None:
    runner, seed, ordinary = corpus_world
    compiled = build_schema()
    cases, sources, uncovered = all_cases(ordinary, seed)
    generator = Generator(ordinary._schema, seed.values)
    started, cpu, executed = time.perf_counter(), time.process_time(), plan_totals()
    first = first_plan(cases)
    done = await compare(runner, ordinary, compiled, first)
    second = second_plan(cases, done.allowed)
    # Pages after the first: each whole-depth document that gave a cursor, read on from it.
    second += [
        (generator.next_page(case.field, case.variables, cursor), viewer)
        for case, viewer, cursor in done.cursors
        if case.name.endswith(": full")
    ]
    cases += [case for case, _ in second if case.name.endswith(": next page")]
    more = await compare(runner, ordinary, compiled, second)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    executed = plan_totals() - executed
    plan = first + second
    done.mismatches += more.mismatches
    done.outcomes += more.outcomes
    done.codes += more.codes
    for source, spent in more.seconds.items():
        done.seconds[source] += spent
    viewers = Counter(viewer for _, viewer in plan)
    sources["generated"] = sum(case.source == "generated" for case in cases)
    seconds = {source: round(value, 1) for source, value in done.seconds.items()}
    print(
        f"\n{len(cases)} documents {dict(sources)}; {len(plan)} executions each way"
        f" {dict(viewers)}; {dict(done.outcomes)}; {elapsed:.1f} s ({cpu:.1f} s of CPU) {seconds};"
        f" error codes: {dict(done.codes)}; compiled path: {dict(executed)}; {uncovered}"
    )
    if executed:
        # Once the compiled path exists, the corpus must reach it, not only its fallback.
        assert executed["planned"] > 0, executed
    found = done.mismatches
    assert not found, f"{len(found)} of {len(plan)} answers differ:\n\n" + "\n\n".join(found[:5])
    # The corpus reaches both sides of the error convention, not only one.
    assert done.outcomes["clean"] > 100 and done.outcomes["with errors"] > 50
    for code in ("BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED", "(data null)"):
        assert done.codes[code] > 0, code


def shouting_titles() -> RoostSchema:
    """The ordinary schema with one resolver changed: a listing's title comes out upper-cased."""
    schema = ordinary_schema()
    listing = schema._schema.type_map["Listing"]
    assert isinstance(listing, GraphQLObjectType)
    title = listing.fields["title"]
    original = title.resolve
    assert original is not None

    def shouted(source: Any, info: Any, **arguments: Any) -> Any:
        return str(original(source, info, **arguments)).upper()

    title.resolve = shouted
    return schema


def exclaiming_instants() -> RoostSchema:
    """The ordinary schema with one completer changed: every DateTime gains a "!"."""
    schema = ordinary_schema()
    date_time = schema._schema.type_map["DateTime"]
    assert isinstance(date_time, GraphQLScalarType)
    original = date_time.coerce_output_value
    date_time.coerce_output_value = lambda value: f"{original(value)}!"
    return schema


async def test_a_changed_resolver_or_completer_is_reported(
    corpus_world: tuple[Runner, Seed, RoostSchema],
) -> None:
    runner, seed, ordinary = corpus_world

    plan = [(case, "anonymous") for case in search_cases(CITY, seed.values.today)]
    found = (await compare(runner, ordinary, shouting_titles(), plan)).mismatches
    assert found, "an upper-cased title went unnoticed"
    report = found[0]
    assert re.match(r"\[bench/search_sql.py\] [a-z+ ]+ #\d+ as anonymous\n", report), report
    at = "at /data/searchListings/edges/0/node/title: ordinary 'Rosa flat' vs compiled 'ROSA FLAT'"
    assert at in report, report
    assert "document: query Search(" in report

    query = ordinary._schema.query_type
    assert query is not None
    generated = Generator(ordinary._schema, seed.values).for_field("me", query.fields["me"])
    me = next(case for case in generated if case.name == "me: full")
    found = (await compare(runner, ordinary, exclaiming_instants(), [(me, "guest")])).mismatches
    assert len(found) == 1
    report = found[0]
    assert report.startswith("[generated] me: full as guest\n"), report
    assert re.search(r"at /data/me/[\w/]+: ordinary '([^']+)' vs compiled '\1!'", report), report
