"""Fuzz every query and mutation field of the schema, as every role, against a running Roost.

    dropdb -h 127.0.0.1 -U postgres --if-exists --force roost_fuzz
    createdb -h 127.0.0.1 -U postgres roost_fuzz
    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/roost_fuzz
    uv run roost seed      # the demo accounts (serve seeds only the embedded database)
    ROOST_SEARCH_CACHE_SECONDS=0 ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_IP=1000000 \\
      ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_ACCOUNT=1000000 \\
      uv run roost serve --port 8021 2> /tmp/roost-fuzz.log &
    uv run python bench/fuzz.py --url http://127.0.0.1:8021 --server-log /tmp/roost-fuzz.log

It starts nothing itself; mutations run for real, so give it a scratch database (a new one per
run makes runs comparable). It signs in as the demo guest, host and admin (and stays anonymous
as a fourth role), signing in again before a token's 15 minutes are up. It makes a little
state first, an upload each for the guest and the host, and before each role's turn two new
listings of the host's (instant-book and request-to-book) and bookings of the guest's (unpaid,
paid and confirmed, paid and waiting for the host). Then, for every root field and role, it sends
`--examples` documents that schemathesis generates from the introspected schema (valid ones)
and `--negative` documents that break it on purpose.

Values: ids come mostly from ids the server has shown (demo data, the setup, and every answer
since), the rest made up; ints, floats, dates, decimals and strings mix plausible values with
arbitrary ones. `--steer` of the valid documents then have most values swapped for plausible
ones chosen by the argument's or input field's name (a listing id for `listingId`, a stay's
dates in order, a real currency), so that requests get past input validation into the rules.
`--variables` of the documents send their arguments as variables instead of literals. The
signed-in accounts' own ids are kept out of the pool (an admin would suspend the fuzzer), and
the fields that take away what others work on (`cancelBooking`, `declineBooking`,
`deleteListing`, `suspendUser`, `logout`) run last in each role's turn.

It prints requests, HTTP statuses and `extensions.code` counts per role and per field; every
answer with a 5xx status or an INTERNAL_SERVER_ERROR (the shortest documents per field, with
variables); oddities (a 4xx, an error without a code, a message that reads like Python) and
answers slower than `--slow` seconds; and, with `--server-log`, the server's ERROR lines written
during the run. Exit status 1 when a 5xx or an INTERNAL_SERVER_ERROR was seen.
"""

import argparse
import base64
import dataclasses
import io
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from unittest import SkipTest

import graphql
import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from PIL import Image
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes

PASSWORD = "roost-demo-2026"  # noqa: S105 (the demo accounts' published password)
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "guest": "liam.obrien@example.com",
    "host": "maria.gonzalez@example.com",
    "admin": "priya.raman@example.com",
}
NODE_TYPES = ("Listing", "Booking", "User", "Payment")
# Run after every other field of a role: they take away what the others work on.
LAST = ("cancelBooking", "declineBooking", "deleteListing", "suspendUser", "logout")
TOKEN_MAX_AGE = 10 * 60  # access tokens live 15 minutes
QUOTED = re.compile(r"^[\w.]+: |'[^']*'")
PYTHONISH = re.compile(r"Traceback|object at 0x|File \"|\w+Error\(|<class '|\bNone\b")

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { id } }
}"""
HARVEST = """query {
  me { id }
  searchListings(first: 100) { edges { cursor node { id host { id } } } pageInfo { endCursor } }
  myListings(first: 100) { edges { node { id } } }
  myTrips(first: 100) { edges { node { id payment { id } listing { id } } } }
  hostReservations(first: 100) { edges { node { id guest { id } payment { id } } } }
}"""


# Values drawn at generation time from pools that grow during the run.
@dataclass
class Pools:
    ids: list[str] = field(default_factory=list)
    by_type: defaultdict = field(default_factory=lambda: defaultdict(list))
    strings: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    protected: set[str] = field(default_factory=set)

    def add_id(self, value: str) -> None:
        if value in self.protected or value in self.ids:
            return
        self.ids.append(value)
        try:
            type_name = base64.b64decode(value, validate=True).decode().split(":", 1)[0]
        except ValueError:
            return
        self.by_type[type_name].append(value)

    def add_string(self, value: str) -> None:
        if value not in self.strings and len(self.strings) < 500:
            self.strings.append(value)


POOLS = Pools()


def from_pool(values: list[str]) -> st.SearchStrategy[str]:
    return st.integers(min_value=0, max_value=2**31).map(
        lambda i: values[i % len(values)] if values else "x"
    )


def global_id(type_name: str, node_id: object) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def register_scalars() -> None:
    """Strategies for the scalars Roost reads, mixing plausible and arbitrary values."""
    today = date.today()
    near = st.dates(min_value=today - timedelta(days=30), max_value=today + timedelta(days=400))
    made_up_ids = st.one_of(
        st.builds(global_id, st.sampled_from(NODE_TYPES), st.integers(1, 10_000)),
        st.builds(
            global_id,
            st.sampled_from([*NODE_TYPES, "Node", "Query", "Money", "x"]),
            st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=30)),
        ),
        st.text(max_size=40),
    )
    ids = st.one_of(from_pool(POOLS.ids), from_pool(POOLS.ids), from_pool(POOLS.ids), made_up_ids)
    schemathesis.graphql.scalar("ID", ids.map(nodes.String))
    schemathesis.graphql.scalar(
        "Int",
        st.one_of(st.integers(-3, 40), st.integers(-(2**31), 2**31 - 1)).map(nodes.Int),
    )
    schemathesis.graphql.scalar(
        "Float",
        st.one_of(
            st.floats(-200, 200, allow_nan=False),
            st.floats(allow_nan=False, allow_infinity=False),
        ).map(nodes.Float),
    )
    plausible = st.sampled_from(
        [
            "EUR", "USD", "JPY", "KWD", "XXX", "PT", "US", "wifi", "pool", "kitchen",
            "Lisbon", "Europe/Lisbon", "Mars/Olympus", "15:00", "11:00", "25:99",
            "liam.obrien@example.com", "maria.gonzalez@example.com", "priya.raman@example.com",
            "new.person@example.com", "https://example.com/a.jpg", "",
        ]
    )  # fmt: skip
    schemathesis.graphql.scalar(
        "String",
        st.one_of(plausible, from_pool(POOLS.strings), st.text(max_size=60)).map(nodes.String),
    )
    schemathesis.graphql.scalar(
        "Date",
        st.one_of(near, near, st.dates()).map(date.isoformat).map(nodes.String)
        | st.text(max_size=12).map(nodes.String),
    )
    schemathesis.graphql.scalar(
        "Decimal",
        st.one_of(
            st.decimals(min_value=0, max_value=10_000, places=2).map(str),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.sampled_from(["1e3", "-0", "0.000000000001", "1E+15", "999999999999999.9", " 1"]),
            st.text(max_size=20),
        ).map(nodes.String),
    )
    schemathesis.graphql.scalar(
        "DateTime", st.datetimes().map(lambda moment: moment.isoformat()).map(nodes.String)
    )


ID_ARGUMENTS = {
    "listingId": "Listing",
    "bookingId": "Booking",
    "paymentId": "Payment",
    "userId": "User",
    "avatarUploadId": "Upload",
    "uploadId": "Upload",
    "photoUploadIds": "Upload",
}
TEXT = (["Sunny flat", "Lisbon", "São Paulo", "Ünïcødé ☀", "Ana", "O'Brien"], ["x" * 2_001, " "])


KEEP = object()  # steer's choice: leave the value as generated


@dataclass(frozen=True)
class Enum:
    name: str


# By the name of an argument or input field: good values, and a few just out of bounds.
PLAUSIBLE: dict[str, tuple[list[Any], list[Any]]] = {
    "country": (["PT", "US", "JP", "FR"], ["XX", "PRT"]),
    "currency": (["EUR", "USD", "JPY", "KWD", "GBP"], ["XYZ"]),
    "timeZone": (["Europe/Lisbon", "Asia/Tokyo", "UTC", "America/New_York"], ["Not/AZone"]),
    "checkInTime": (["15:00", "14:30", "00:00"], ["24:00"]),
    "checkOutTime": (["11:00", "10:00", "23:59"], ["11:00:00"]),
    "password": (["a-long-enough-passw0rd!", "another good passphrase"], ["short"]),
    "newPassword": (["a-long-enough-passw0rd!", "another good passphrase"], ["short"]),
    "currentPassword": (["a-long-enough-passw0rd!"], ["wrong"]),
    "language": (["en", "pt-PT", "ja"], ["xx"]),
    "amenities": ([["wifi"], ["wifi", "pool"], []], [["kitchen", "no-such-thing"]]),
    "amount": (["10", "120.50", "0.5", "99999"], ["1.234", "0"]),
    "minPrice": (["0", "50", "100.00"], ["-1"]),
    "maxPrice": (["100", "1000.5"], ["0"]),
    "guests": ([1, 1, 2, 4], [0]),
    "maxGuests": ([1, 2, 6], [0]),
    "bedrooms": ([0, 1, 3], [-1]),
    "beds": ([1, 2], [0]),
    "minNights": ([1, 2, 7], [0]),
    "maxNights": ([None, 7, 30], [0]),
    "first": ([1, 5, 20, 100], [101]),
    "latitude": ([38.72, -33.92, 0.0, 89.99], [90.5]),
    "longitude": ([-9.14, 151.2, 180.0], [-180.5]),
    "bathrooms": ([1.0, 1.5, 0.0], [2.25]),
    "radiusKm": ([1.0, 25.0, 500.0], [0.0]),
    "postalCode": (["1100-148", "10001", None], ["x" * 21]),
    "phone": (["+351912345678", "+14155550123"], ["12"]),
    "redirectUri": (["http://localhost:3000/oauth/callback"], ["https://evil.example/"]),
    "location": (["Lisbon", "lisboa", "Tokyo", "Portugal", "sao paulo"], ["%", "_"]),
    "provider": ([Enum("TEST")], [Enum("STRIPE")]),
    "status": ([None, Enum("PENDING"), Enum("CONFIRMED"), Enum("CANCELED")], [Enum("COMPLETED")]),
    "sort": ([Enum("RELEVANCE"), Enum("PRICE_ASC"), Enum("RATING"), Enum("NEWEST")], []),
}


def literal(value: Any) -> graphql.ValueNode:
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, Enum):
        return graphql.EnumValueNode(value=value.name)
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(literal(item) for item in value))
    return graphql.StringValueNode(value=value)


def steer(document: str, schema: graphql.GraphQLSchema, rng: random.Random) -> str:
    """The document with many of its values swapped for plausible ones, chosen by the name of
    the argument or input field, so that more requests get past validation into the rules:
    ids of the right type, a stay's dates in order, real currencies and countries."""
    ast = graphql.parse(document)
    type_info = graphql.TypeInfo(schema)
    start = date.today() + timedelta(days=rng.randint(-3, 330))
    stay = {"checkIn": start, "from": start}
    stay["checkOut"] = stay["to"] = start + timedelta(days=rng.choice([1, 2, 3, 5, 7, 30, 0]))
    root: list[str] = []

    def pool_of(name: str) -> list[str]:
        type_name = ID_ARGUMENTS.get(name)
        if name == "id" and root:
            field_name = root[0].lower()
            type_name = next((t for t in NODE_TYPES if t.lower() in field_name), None)
        return POOLS.by_type.get(type_name, []) if type_name else POOLS.ids

    def choose(name: str, input_type: graphql.GraphQLInputType | None) -> Any:
        named = graphql.get_named_type(input_type) if input_type else None
        is_list = isinstance(graphql.get_nullable_type(input_type), graphql.GraphQLList)
        if name in PLAUSIBLE:
            good, bad = PLAUSIBLE[name]
            return rng.choice(bad if bad and rng.random() < 0.1 else good)
        if name == "email":
            known = [email for email in ROLES.values() if email]
            return rng.choice([*known, f"fuzz.{rng.randrange(10**9)}@example.com", "not-an-email"])
        if name == "refreshToken" and POOLS.refresh_tokens:
            return rng.choice(POOLS.refresh_tokens[-50:])
        if name == "after":
            return rng.choice(POOLS.strings[-20:]) if rng.random() < 0.3 else None
        if name in stay and named is not None and named.name == "Date":
            return stay[name].isoformat()
        if named is not None and named.name == "ID":
            ids = pool_of(name)
            if not ids:
                return KEEP
            return rng.sample(ids, min(len(ids), rng.randint(0, 3))) if is_list else rng.choice(ids)
        if named is not None and named.name == "String" and not is_list:
            good, bad = TEXT
            return rng.choice(bad if rng.random() < 0.1 else good)
        return KEEP

    class Steer(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if not root:
                root.append(node.name.value)

        def swap(self, node: Any) -> Any:
            if isinstance(node.value, graphql.VariableNode) or rng.random() > 0.9:
                return None
            value = choose(node.name.value, type_info.get_input_type())
            if value is KEEP:
                return None
            return dataclasses.replace(node, value=literal(value))

        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            return self.swap(node)

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
            return self.swap(node)

    return graphql.print_ast(graphql.visit(ast, graphql.TypeInfoVisitor(type_info, Steer())))


def hoist_arguments(document: str, schema: graphql.GraphQLSchema) -> tuple[str, dict[str, Any]]:
    """The same operation with every literal argument sent as a variable instead."""
    ast = graphql.parse(document)
    type_info = graphql.TypeInfo(schema)
    variables: dict[str, Any] = {}
    definitions: list[graphql.VariableDefinitionNode] = []

    class Hoist(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            argument = type_info.get_argument()
            if argument is None or isinstance(node.value, graphql.VariableNode):
                return None
            name = f"v{len(definitions)}"
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            variables[name] = graphql.value_from_ast_untyped(node.value)
            definitions.append(
                graphql.VariableDefinitionNode(
                    variable=variable, type=graphql.parse_type(str(argument.type))
                )
            )
            return graphql.ArgumentNode(name=node.name, value=variable)

    hoisted = graphql.visit(ast, graphql.TypeInfoVisitor(type_info, Hoist()))
    hoisted = dataclasses.replace(
        hoisted,
        definitions=tuple(
            dataclasses.replace(definition, variable_definitions=tuple(definitions))
            if isinstance(definition, graphql.OperationDefinitionNode)
            else definition
            for definition in hoisted.definitions
        ),
    )
    return graphql.print_ast(hoisted), variables


@dataclass
class Problem:
    role: str
    operation: str
    status: int
    document: str
    variables: dict[str, Any] | None
    body: str


@dataclass
class Report:
    requests: Counter = field(default_factory=Counter)
    statuses: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    codes: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    problems: defaultdict = field(default_factory=lambda: defaultdict(list))
    problem_counts: Counter = field(default_factory=Counter)
    odd: defaultdict = field(default_factory=lambda: defaultdict(list))
    odd_counts: Counter = field(default_factory=Counter)
    slow: list = field(default_factory=list)
    reauth: Counter = field(default_factory=Counter)
    by_field: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    refused: defaultdict = field(default_factory=lambda: defaultdict(Counter))

    def keep(self, bucket: defaultdict, key: str, problem: Problem, limit: int = 3) -> None:
        kept = bucket[key]
        kept.append(problem)
        kept.sort(key=lambda p: len(p.document) + len(json.dumps(p.variables)))
        del kept[limit:]


class Role:
    def __init__(self, client: httpx.Client, url: str, name: str, email: str | None) -> None:
        self.client, self.url, self.name, self.email = client, url, name, email
        self.token: str | None = None
        self.signed_in_at = 0.0
        self.user_id: str | None = None

    def sign_in(self) -> None:
        if self.email is None:
            return
        answer = self.client.post(
            self.url,
            json={"query": LOGIN, "variables": {"email": self.email, "password": PASSWORD}},
        ).json()
        if not answer.get("data"):
            raise SystemExit(f"{self.name}: cannot sign in: {answer.get('errors')}")
        self.token = answer["data"]["login"]["accessToken"]
        self.user_id = answer["data"]["login"]["user"]["id"]
        self.signed_in_at = time.monotonic()

    def headers(self) -> dict[str, str]:
        if self.email is None:
            return {}
        if time.monotonic() - self.signed_in_at > TOKEN_MAX_AGE:
            self.sign_in()
        return {"Authorization": f"Bearer {self.token}"}


CREATE_LISTING = "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }"
CREATE_BOOKING = "mutation($input: CreateBookingInput!) { createBooking(input: $input) { id } }"
START_PAYMENT = """mutation($id: ID!) {
  startPayment(bookingId: $id, provider: TEST) { payment { id } }
}"""
CONFIRM_PAYMENT = "mutation($id: ID!) { confirmTestPayment(paymentId: $id) { id status } }"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, format="PNG")
    return out.getvalue()


def listing_input(number: int, *, instant: bool) -> dict[str, Any]:
    return {
        "title": f"Fuzz flat {number}",
        "description": "A flat the fuzzer made.",
        "propertyType": "ENTIRE_PLACE",
        "address": {"city": "Lisbon", "country": "PT"},
        "latitude": 38.72,
        "longitude": -9.14,
        "maxGuests": 4,
        "bedrooms": 2,
        "beds": 2,
        "bathrooms": 1.0,
        "nightlyPrice": {"amount": "90.00", "currency": "EUR"},
        "cleaningFee": {"amount": "20.00", "currency": "EUR"},
        "amenities": ["wifi"],
        "instantBook": instant,
        "cancellationPolicy": ["FLEXIBLE", "MODERATE", "FIRM", "STRICT"][number % 4],
    }


def harvest(value: Any) -> None:
    """Remember the ids and cursors an answer shows, for later documents to use."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "id" and isinstance(item, str):
                POOLS.add_id(item)
            elif key in ("cursor", "endCursor") and isinstance(item, str):
                POOLS.add_string(item)
            elif key == "refreshToken" and isinstance(item, str):
                POOLS.refresh_tokens.append(item)
            else:
                harvest(item)
    elif isinstance(value, list):
        for item in value:
            harvest(item)


class Fuzzer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.url.rstrip("/") + "/graphql"
        self.client = httpx.Client(timeout=60)
        self.report = Report()
        self.random = random.Random(args.seed)
        self.last_error = ""

    def send(self, role: Role, label: str, document: str, variables: dict | None) -> None:
        payload: dict[str, Any] = {"query": document}
        if variables is not None:
            payload["variables"] = variables
        started = time.perf_counter()
        response = self.client.post(self.url, json=payload, headers=role.headers())
        elapsed = time.perf_counter() - started
        report = self.report
        report.requests[role.name] += 1
        report.statuses[role.name][response.status_code] += 1
        problem = Problem(role.name, label, response.status_code, document, variables, "")
        if elapsed > self.args.slow:
            report.slow.append((elapsed, problem))
        try:
            body = response.json()
        except ValueError:
            body = None
        problem.body = response.text[:2000]
        if response.status_code >= 500:
            report.problem_counts[label] += 1
            report.keep(report.problems, label, problem)
        elif response.status_code >= 400:
            report.odd_counts[f"{label}: HTTP {response.status_code}"] += 1
            report.keep(report.odd, f"{label}: HTTP {response.status_code}", problem, 1)
        if not isinstance(body, dict):
            return
        harvest(body.get("data"))
        outcomes = report.by_field[label]
        outcomes["requests"] += 1
        if not body.get("errors"):
            outcomes["ok"] += 1
        for error in body.get("errors") or []:
            outcomes[(error.get("extensions") or {}).get("code", "(no code)")] += 1
            for name, why in ((error.get("extensions") or {}).get("fields") or {}).items():
                report.refused[label][f"{QUOTED.sub('', name)}: {why[:70]}"] += 1
            extensions = error.get("extensions") or {}
            code = extensions.get("code", "(no code)")
            report.codes[role.name][code] += 1
            if code == "INTERNAL_SERVER_ERROR":
                report.problem_counts[label] += 1
                report.keep(report.problems, label, problem)
            elif code == "(no code)":
                report.odd_counts[f"{label}: error without a code"] += 1
                report.keep(report.odd, f"{label}: error without a code", problem, 1)
            elif PYTHONISH.search(message := error.get("message", "")):
                part = next((p for p in message.split("; ") if PYTHONISH.search(p)), message)
                key = "message reads like Python: " + QUOTED.sub("'...'", part)[:120]
                report.odd_counts[key] += 1
                report.keep(report.odd, key, problem, 1)
            if code == "UNAUTHENTICATED" and extensions.get("reason") and role.email:
                report.reauth[role.name] += 1
                role.sign_in()

    def fuzz(self, role: Role, operation: Any, schema: graphql.GraphQLSchema) -> None:
        for mode, examples in (
            (GenerationMode.POSITIVE, self.args.examples),
            (GenerationMode.NEGATIVE, self.args.negative),
        ):
            if examples <= 0:
                continue
            steer_share = self.args.steer if mode is GenerationMode.POSITIVE else 0.0
            try:
                self.fuzz_mode(role, operation, schema, mode, examples, steer_share)
            except (SkipTest, InvalidArgument):
                pass  # no way to break this field's input (it takes none)

    def fuzz_mode(
        self,
        role: Role,
        operation: Any,
        schema: graphql.GraphQLSchema,
        mode: GenerationMode,
        examples: int,
        steer_share: float,
    ) -> None:
        @seed(self.random.getrandbits(64))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            document = case.body if isinstance(case.body, str) else str(case.body)
            variables = None
            if self.random.random() < steer_share:
                document = steer(document, schema, self.random)
            if self.random.random() < self.args.variables:
                try:
                    document, variables = hoist_arguments(document, schema)
                except (graphql.GraphQLError, TypeError, ValueError):
                    pass  # a negative document graphql-core cannot parse: send it as it is
            self.send(role, operation.label, document, variables)

        run()

    def call(
        self, role: Role, document: str, variables: dict[str, Any], *, quiet: bool = False
    ) -> dict[str, Any]:
        answer = self.client.post(
            self.url, json={"query": document, "variables": variables}, headers=role.headers()
        ).json()
        harvest(answer.get("data"))
        self.last_error = (answer.get("errors") or [{}])[0].get("message", "")
        if answer.get("errors") and not quiet:
            print(f"  setup, as {role.name}: {answer['errors'][0].get('message')}")
        return answer.get("data") or {}

    def prepare(self, roles: dict[str, Role]) -> None:
        """An upload each for the guest and the host to put on profiles and listings."""
        for name in ("guest", "host"):
            if name not in roles:
                continue
            response = self.client.post(
                self.args.url.rstrip("/") + "/uploads",
                files={"file": ("fuzz.png", png(), "image/png")},
                headers=roles[name].headers(),
            )
            if response.status_code == 201:
                POOLS.add_id(response.json()["id"])

    def replenish(self, roles: dict[str, Role], round_number: int) -> None:
        """Before each role's turn (the one before may have deleted and cancelled them): two
        new listings of the host's, instant-book and request-to-book, and new stays of the
        guest's in dates no earlier round took, a third left unpaid, the rest paid (confirmed
        on instant-book listings, waiting for the host on the others)."""
        fresh: list[str] = []
        for number in range(2) if "host" in roles else ():
            variables = {"input": listing_input(number, instant=number == 0)}
            made = self.call(roles["host"], CREATE_LISTING, variables)
            if made.get("createListing"):
                fresh.append(made["createListing"]["id"])
        guest = roles.get("guest")
        if guest is None:
            return
        first = date.today() + timedelta(days=20 + 80 * round_number)
        made, refused = 0, Counter()
        for number, listing in enumerate(dict.fromkeys([*fresh, *POOLS.by_type["Listing"]])):
            if made == 6:
                break
            check_in = first + timedelta(days=5 * number)
            booking = {
                "listingId": listing,
                "checkIn": check_in.isoformat(),
                "checkOut": (check_in + timedelta(days=3)).isoformat(),
                "guests": 1,
            }
            answer = self.call(guest, CREATE_BOOKING, {"input": booking}, quiet=True)
            if not answer.get("createBooking"):
                refused[self.last_error] += 1
                continue
            made += 1
            if made % 3 == 0:
                continue
            paid = self.call(guest, START_PAYMENT, {"id": answer["createBooking"]["id"]})
            if paid.get("startPayment"):
                self.call(guest, CONFIRM_PAYMENT, {"id": paid["startPayment"]["payment"]["id"]})
        why = "".join(f"; {count} refused: {message}" for message, count in refused.items())
        print(f"  setup: {len(fresh)} listings, {made} bookings{why}", flush=True)

    def run(self) -> int:
        started = time.monotonic()
        log_offset = 0
        if self.args.server_log:
            log_offset = Path(self.args.server_log).stat().st_size
        roles = [Role(self.client, self.url, name, ROLES[name]) for name in self.args.roles]
        for role in roles:
            role.sign_in()
            if role.user_id:
                POOLS.protected.add(role.user_id)
        for role in roles:
            answer = self.client.post(self.url, json={"query": HARVEST}, headers=role.headers())
            harvest(answer.json().get("data"))
        self.prepare({role.name: role for role in roles})
        register_scalars()
        api = schemathesis.graphql.from_url(self.url)
        schema = api.client_schema
        operations = [result.ok() for result in api.get_all_operations()]
        if self.args.only:
            operations = [op for op in operations if op.label.split(".")[1] in self.args.only]
        operations.sort(key=lambda op: op.label.split(".")[1] in LAST)
        kinds = ", ".join(f"{len(ids)} {kind}" for kind, ids in POOLS.by_type.items())
        print(f"{len(operations)} fields x {len(roles)} roles; ids in the pool: {kinds}")
        for round_number, role in enumerate(roles):
            self.replenish({role.name: role for role in roles}, round_number)
            role_started = time.monotonic()
            for operation in operations:
                self.fuzz(role, operation, schema)
            print(
                f"  {role.name}: {self.report.requests[role.name]} requests"
                f" in {time.monotonic() - role_started:.0f} s",
                flush=True,
            )
        self.print_report(time.monotonic() - started)
        if self.args.server_log:
            self.print_server_errors(Path(self.args.server_log), log_offset)
        return 1 if self.report.problem_counts else 0

    def print_report(self, elapsed: float) -> None:
        report = self.report
        total = sum(report.requests.values())
        print(f"\n{total} requests in {elapsed:.0f} s; {len(POOLS.ids)} ids in the pool at the end")
        for name in report.requests:
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses[name].items()))
            codes = ", ".join(f"{k}: {v}" for k, v in report.codes[name].most_common())
            reauth = f"; signed in again {report.reauth[name]}x" if report.reauth[name] else ""
            print(f"{name:>9}: {report.requests[name]} requests; HTTP {statuses}{reauth}")
            print(f"{'':>9}  codes {codes}")
        all_codes = sum((report.codes[name] for name in report.codes), Counter())
        print(f"{'all':>9}: codes {', '.join(f'{k}: {v}' for k, v in all_codes.most_common())}")
        print("\nBy field, all roles: requests, answers without errors, then error codes")
        for label, outcomes in sorted(report.by_field.items()):
            codes = ", ".join(
                f"{code}: {count}"
                for code, count in outcomes.most_common()
                if code not in ("requests", "ok")
            )
            print(f"  {label}: {outcomes['requests']}, ok {outcomes['ok']}; {codes}")
        print(f"\n5xx or INTERNAL_SERVER_ERROR: {sum(report.problem_counts.values())}")
        for label, count in report.problem_counts.most_common():
            print(f"\n== {label}: {count}")
            for problem in report.problems[label]:
                self.print_problem(problem)
        print(f"\nOdd answers: {sum(report.odd_counts.values())}")
        for key, count in report.odd_counts.most_common():
            print(f"\n-- {key}: {count}")
            for problem in report.odd[key]:
                self.print_problem(problem)
        print(f"\nSlower than {self.args.slow} s: {len(report.slow)}")
        for elapsed_s, problem in sorted(report.slow, key=lambda item: -item[0])[:10]:
            print(f"\n-- {elapsed_s:.2f} s")
            self.print_problem(problem)

    @staticmethod
    def print_problem(problem: Problem) -> None:
        print(f"  as {problem.role}, HTTP {problem.status}")
        print("  " + problem.document.replace("\n", "\n  "))
        if problem.variables is not None:
            print(f"  variables: {json.dumps(problem.variables)[:1000]}")
        print(f"  answer: {problem.body[:600]}")

    @staticmethod
    def print_server_errors(path: Path, offset: int) -> None:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        errors = Counter()
        first: dict[str, dict] = {}
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") not in ("ERROR", "CRITICAL"):
                continue
            traceback = entry.get("traceback", "")
            key = entry.get("message", "") + " | " + traceback.strip().rsplit("\n", 1)[-1]
            errors[key] += 1
            first.setdefault(key, entry)
        print(f"\nServer log lines at ERROR during the run: {sum(errors.values())}")
        for key, count in errors.most_common():
            print(f"\n-- {count}x {key}")
            print(json.dumps(first[key], indent=1)[:4000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="where Roost runs: http://127.0.0.1:8021")
    parser.add_argument("--examples", type=int, default=150, help="valid documents per field")
    parser.add_argument("--negative", type=int, default=40, help="invalid documents per field")
    parser.add_argument("--variables", type=float, default=0.5, help="share sent as variables")
    parser.add_argument("--steer", type=float, default=0.7, help="share of valid documents steered")
    parser.add_argument("--roles", nargs="+", default=list(ROLES), choices=list(ROLES))
    parser.add_argument("--only", nargs="+", help="only these root fields")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds that count as slow")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--server-log", help="the server's stderr, to show its ERROR lines")
    sys.exit(Fuzzer(parser.parse_args()).run())


if __name__ == "__main__":
    main()
