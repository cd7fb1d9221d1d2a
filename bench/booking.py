"""Booking benchmark: bookings without contention, then fifty guests racing for the same nights.

    ROOST_DATA_DIR=.bench ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_IP=100000 \\
        ROOST_MAX_PENDING_BOOKINGS_PER_GUEST=1000 uv run roost serve --workers 2 &
    uv run python bench/booking.py --url http://127.0.0.1:8000/graphql \\
        --database-url 'postgresql://postgres@/postgres?host=.bench/pg'

Start the server with both limits raised: the bench signs up a host and 160 guests (with the
defaults) from one address, and sign-ups are limited per IP, 30 a minute by default; and each
contended round leaves its winner with one more unpaid booking (a guest may hold 5 by default).
Access tokens last 15 minutes by default: a run must finish within them.

Everything is set up through GraphQL, with e-mail addresses unique to the run: a host, its
listings (instant book, 1 to 28 nights), and guests. Then:

  1. One booking at a time, for the latency of a single uncontended booking; then --clients
     concurrent clients make --bookings bookings, each on nights nobody else asks for. Prints
     bookings per second, p50/p95/p99 latency, and failures by code.
  2. --rounds rounds in which 50 guests ask for the same nights of the same listing at once.
     Each round must make exactly one booking and answer CONFLICT to everyone else; anything
     else (a 5xx, another code) is a failure. Prints each round's wall time, and the median
     and slowest round as a multiple of the single booking's p50 (target: at most 50x).
  3. A SQL audit through asyncpg: pairs of active bookings of one listing whose nights
     overlap. There must be none.

Exits non-zero on any double booking or unexpected failure.
"""

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg
import httpx
import orjson
from strawberry.relay import from_base64

# Not a secret: the shared password of throwaway accounts the bench signs up.
PASSWORD = "bench horse battery staple"  # noqa: S105
CONTENDERS = 50
TARGET_MULTIPLE = 50
NIGHTS_PER_STAY = 2
GUESTS_PER_STAY = 2
# A guest may hold only a few unpaid bookings; four keeps under the default limit of five.
BOOKINGS_PER_GUEST = 4
# Stays start tomorrow, so "today" where the listing is can never be later than check-in,
# and end well before the 365-day horizon.
FIRST_NIGHT_OFFSET = 1
LAST_NIGHT_OFFSET = 300
SIGN_UPS_AT_ONCE = 8

REGISTER = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }"
CREATE_LISTING = "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }"
CREATE_BOOKING = (
    "mutation($input: CreateBookingInput!) { createBooking(input: $input) { id status } }"
)
PING = "{ __typename }"
DOUBLE_BOOKINGS = """
SELECT count(*)
FROM booking a
JOIN booking b ON b.listing_id = a.listing_id AND a.id < b.id
WHERE a.status IN ('PENDING', 'CONFIRMED')
  AND b.status IN ('PENDING', 'CONFIRMED')
  AND daterange(a.check_in, a.check_out) && daterange(b.check_in, b.check_out)
"""
ACTIVE_BOOKINGS_OF = """
SELECT count(*) FROM booking
WHERE listing_id = ANY($1::bigint[]) AND status IN ('PENDING', 'CONFIRMED')
"""


class SetupFailed(Exception):
    """The server refused a sign-up or a listing: the bench cannot go on."""


@dataclass(frozen=True)
class Stay:
    listing_id: str
    check_in: date
    check_out: date


@dataclass(frozen=True)
class Outcome:
    """What one createBooking answered: code "OK" for a booking made."""

    code: str
    message: str
    latency: float


@dataclass
class Round:
    number: int
    outcomes: list[Outcome]
    wall: float

    @property
    def won(self) -> int:
        return made(self.outcomes)

    @property
    def conflicts(self) -> int:
        return sum(outcome.code == "CONFLICT" for outcome in self.outcomes)

    @property
    def unexpected(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.code not in ("OK", "CONFLICT")]

    @property
    def ok(self) -> bool:
        return self.won == 1 and not self.unexpected


@dataclass
class Setup:
    uncontended_listings: list[str]
    contended_listings: list[str]
    guest_tokens: list[str]
    contender_tokens: list[str]
    seconds: float

    @property
    def all_listings(self) -> list[str]:
        return self.uncontended_listings + self.contended_listings


@dataclass
class Tally:
    """The outcomes of a phase, with how long it took."""

    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0


def made(outcomes: list[Outcome]) -> int:
    return sum(outcome.code == "OK" for outcome in outcomes)


def failures(outcomes: list[Outcome]) -> Counter[str]:
    """How many answers of each kind other than OK."""
    return Counter(outcome.code for outcome in outcomes if outcome.code != "OK")


# Talking to the server.


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def graphql(
    client: httpx.AsyncClient, url: str, query: str, variables: dict, token: str | None = None
) -> dict:
    """The answer's body, for setup steps: any error stops the bench."""
    response = await client.post(
        url,
        json={"query": query, "variables": variables},
        headers=bearer(token) if token else None,
    )
    body = orjson.loads(response.content)
    if response.status_code != 200 or "errors" in body:
        raise SetupFailed(f"HTTP {response.status_code}: {response.text[:500]}")
    return body["data"]


def outcome_of(response: httpx.Response, latency: float) -> Outcome:
    """Names what the server answered: OK, the error's extensions.code, or the HTTP status."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return Outcome(f"HTTP {response.status_code}", response.text[:200], latency)
    if errors := body.get("errors"):
        first = errors[0]
        code = (first.get("extensions") or {}).get("code", f"HTTP {response.status_code}")
        if response.status_code >= 500:  # a server error stays visible as one
            code = f"HTTP {response.status_code} {code}"
        return Outcome(code, first.get("message", ""), latency)
    if response.status_code != 200 or not (body.get("data") or {}).get("createBooking"):
        return Outcome(f"HTTP {response.status_code}", response.text[:200], latency)
    return Outcome("OK", "", latency)


async def book(client: httpx.AsyncClient, url: str, token: str, stay: Stay) -> Outcome:
    variables = {
        "input": {
            "listingId": stay.listing_id,
            "checkIn": stay.check_in.isoformat(),
            "checkOut": stay.check_out.isoformat(),
            "guests": GUESTS_PER_STAY,
        }
    }
    started = time.perf_counter()
    try:
        response = await client.post(
            url, json={"query": CREATE_BOOKING, "variables": variables}, headers=bearer(token)
        )
    except httpx.HTTPError as error:
        return Outcome(type(error).__name__, str(error), time.perf_counter() - started)
    return outcome_of(response, time.perf_counter() - started)


async def open_connections(client: httpx.AsyncClient, url: str, count: int) -> None:
    """Opens ``count`` keep-alive connections, so no measured request waits for a handshake."""
    await asyncio.gather(*(graphql(client, url, PING, {}) for _ in range(count)))


# Setup, through GraphQL only.


async def sign_up(client: httpx.AsyncClient, url: str, email: str, role: str) -> str:
    data = await graphql(
        client,
        url,
        REGISTER,
        {
            "input": {
                "email": email,
                "password": PASSWORD,
                "firstName": "Bench",
                "lastName": role.title(),
                "role": role,
            }
        },
    )
    return data["register"]["accessToken"]


async def sign_up_guests(client: httpx.AsyncClient, url: str, run_id: str, count: int) -> list[str]:
    # Password hashing is deliberately slow; a few sign-ups at a time keep the server responsive.
    gate = asyncio.Semaphore(SIGN_UPS_AT_ONCE)

    async def one(number: int) -> str:
        async with gate:
            return await sign_up(client, url, f"bench-{run_id}-guest{number}@example.com", "GUEST")

    return list(await asyncio.gather(*(one(number) for number in range(count))))


def listing_input(title: str) -> dict:
    return {
        "title": title,
        "description": "A listing made by the booking benchmark.",
        "propertyType": "ENTIRE_PLACE",
        "address": {"line1": "Rua da Bica 3", "city": "Lisboa", "country": "PT"},
        "latitude": 38.7107,
        "longitude": -9.1468,
        "maxGuests": 4,
        "bedrooms": 2,
        "beds": 2,
        "bathrooms": 1,
        "nightlyPrice": {"amount": "80", "currency": "EUR"},
        "cleaningFee": {"amount": "20", "currency": "EUR"},
        "amenities": ["wifi", "kitchen"],
        "instantBook": True,
        "cancellationPolicy": "FLEXIBLE",
        "minNights": 1,
        "maxNights": 28,
    }


async def create_listings(
    client: httpx.AsyncClient, url: str, token: str, run_id: str, count: int, kind: str
) -> list[str]:
    async def one(number: int) -> str:
        title = f"Bench {run_id} {kind} {number}"
        data = await graphql(client, url, CREATE_LISTING, {"input": listing_input(title)}, token)
        return data["createListing"]["id"]

    return list(await asyncio.gather(*(one(number) for number in range(count))))


def listings_needed(stays: int, clients: int) -> int:
    """Enough listings that stays fit before the horizon, and that concurrent clients
    mostly book different listings (they would otherwise queue on its lock)."""
    stays_per_listing = (LAST_NIGHT_OFFSET - FIRST_NIGHT_OFFSET) // NIGHTS_PER_STAY
    return max(2 * clients, math.ceil(stays / stays_per_listing))


async def set_up(client: httpx.AsyncClient, url: str, args: argparse.Namespace) -> Setup:
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:10]
    host = await sign_up(client, url, f"bench-{run_id}-host@example.com", "HOST")
    uncontended_stays = args.single + args.bookings
    uncontended = await create_listings(
        client, url, host, run_id, listings_needed(uncontended_stays, args.clients), "free"
    )
    contended = await create_listings(client, url, host, run_id, args.rounds, "contended")
    guests = await sign_up_guests(
        client, url, run_id, math.ceil(uncontended_stays / BOOKINGS_PER_GUEST) + CONTENDERS
    )
    return Setup(
        uncontended_listings=uncontended,
        contended_listings=contended,
        guest_tokens=guests[CONTENDERS:],
        contender_tokens=guests[:CONTENDERS],
        seconds=time.perf_counter() - started,
    )


# Phase 1: no contention.


def uncontended_plan(listings: list[str], count: int) -> list[Stay]:
    """Stays that never share a night: consecutive stays go to different listings, and each
    listing's stays follow one another."""
    first = date.today() + timedelta(days=FIRST_NIGHT_OFFSET)
    plan = []
    for number in range(count):
        slot = number // len(listings)
        check_in = first + timedelta(days=slot * NIGHTS_PER_STAY)
        plan.append(
            Stay(
                listings[number % len(listings)],
                check_in,
                check_in + timedelta(days=NIGHTS_PER_STAY),
            )
        )
    return plan


async def book_all(
    client: httpx.AsyncClient, url: str, work: list[tuple[str, Stay]], clients: int
) -> Tally:
    """Makes the bookings with ``clients`` requests in flight at any time."""
    tally = Tally()
    queue: Iterator[tuple[str, Stay]] = iter(work)

    async def worker() -> None:
        for token, stay in queue:
            tally.outcomes.append(await book(client, url, token, stay))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    tally.elapsed = time.perf_counter() - started
    return tally


def with_guests(stays: list[Stay], tokens: list[str]) -> list[tuple[str, Stay]]:
    return [(tokens[number // BOOKINGS_PER_GUEST], stay) for number, stay in enumerate(stays)]


# Phase 2: contention.


async def contended_round(
    client: httpx.AsyncClient, url: str, number: int, listing_id: str, tokens: list[str]
) -> Round:
    check_in = date.today() + timedelta(days=FIRST_NIGHT_OFFSET + 7)
    stay = Stay(listing_id, check_in, check_in + timedelta(days=NIGHTS_PER_STAY))
    # Shuffled, so no guest is always the first to fire (and so always the winner).
    contenders = random.sample(tokens, len(tokens))
    # Everyone, and the timekeeper, waits at the barrier; the round starts when all are there.
    start_line = asyncio.Barrier(len(contenders) + 1)

    async def contender(token: str) -> Outcome:
        await start_line.wait()
        return await book(client, url, token, stay)

    tasks = [asyncio.create_task(contender(token)) for token in contenders]
    await start_line.wait()
    started = time.perf_counter()
    outcomes = await asyncio.gather(*tasks)
    return Round(number, list(outcomes), time.perf_counter() - started)


async def run_rounds(client: httpx.AsyncClient, url: str, setup: Setup) -> list[Round]:
    rounds = []
    for number, listing_id in enumerate(setup.contended_listings, start=1):
        await open_connections(client, url, CONTENDERS)
        rounds.append(
            await contended_round(client, url, number, listing_id, setup.contender_tokens)
        )
    return rounds


# The SQL audit.


def database_ids(listing_ids: list[str]) -> list[int]:
    return [int(from_base64(listing_id)[1]) for listing_id in listing_ids]


async def audit(database_url: str, listing_ids: list[str]) -> tuple[int, int]:
    """(overlapping pairs of active bookings anywhere, active bookings of this run's listings)."""
    connection = await asyncpg.connect(database_url)
    try:
        overlaps = await connection.fetchval(DOUBLE_BOOKINGS)
        active = await connection.fetchval(ACTIVE_BOOKINGS_OF, database_ids(listing_ids))
    finally:
        await connection.close()
    return overlaps, active


# Reporting.


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds."""
    if len(latencies) < 2:
        only = latencies[0] * 1000 if latencies else math.nan
        return only, only, only
    # Inclusive: with few samples, the exclusive method would report a p99 above the maximum.
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


def report_phase(name: str, tally: Tally) -> None:
    latencies = [outcome.latency for outcome in tally.outcomes]
    failed = sum(failures(tally.outcomes).values())
    p50, p95, p99 = percentiles(latencies)
    rate = len(latencies) / tally.elapsed if tally.elapsed else math.nan
    print(
        f"{name:<16}{len(latencies):>9}{rate:>9.1f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}"
        f"{max(latencies, default=math.nan) * 1000:>9.1f}{failed:>9}"
    )


def describe_failures(outcomes: list[Outcome]) -> str:
    counts = failures(outcomes).most_common()
    return ", ".join(f"{code} x{count}" for code, count in counts) or "none"


def report_round(result: Round) -> None:
    verdict = "ok" if result.ok else "FAILED"
    print(
        f"{result.number:>5}{result.won:>6}{result.conflicts:>10}{len(result.unexpected):>7}"
        f"{result.wall * 1000:>10.1f}  {verdict}"
    )
    for outcome in result.unexpected:
        print(f"       {outcome.code}: {outcome.message}")


def report_conflict_messages(rounds: list[Round]) -> None:
    """A loser should hear that the nights are taken; any other CONFLICT (too many unpaid
    bookings, say) means the race was not what it should have been."""
    messages = Counter(
        outcome.message
        for result in rounds
        for outcome in result.outcomes
        if outcome.code == "CONFLICT"
    )
    for message, count in messages.most_common():
        print(f"  CONFLICT x{count}: {message}")


def report_ratio(rounds: list[Round], single_p50_ms: float) -> None:
    walls = [result.wall * 1000 for result in rounds]
    print(f"contended round as a multiple of one booking's p50 ({single_p50_ms:.1f} ms):")
    for name, wall in (("median", statistics.median(walls)), ("max", max(walls))):
        multiple = wall / single_p50_ms
        verdict = "met" if multiple <= TARGET_MULTIPLE else "NOT met"
        print(
            f"  {name:<7}{wall:>8.1f} ms = {multiple:5.1f}x  target <= {TARGET_MULTIPLE}x: {verdict}"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument(
        "--database-url", required=True, help="the server's database, for the SQL audit"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--single", type=int, default=40, help="bookings made one at a time, for the baseline"
    )
    args = parser.parse_args()
    if min(args.clients, args.bookings, args.rounds, args.single) < 1:
        parser.error("--clients, --bookings, --rounds and --single must be at least 1")

    connections = max(args.clients, CONTENDERS)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        try:
            setup = await set_up(client, args.url, args)
        except SetupFailed as error:
            print(f"setup failed (are the limits raised? see --help): {error}", file=sys.stderr)
            return 2
        print(
            f"setup: 1 host, {len(setup.all_listings)} listings, "
            f"{len(setup.guest_tokens) + len(setup.contender_tokens)} guests "
            f"in {setup.seconds:.1f} s, {args.url}"
        )

        work = with_guests(
            uncontended_plan(setup.uncontended_listings, args.single + args.bookings),
            setup.guest_tokens,
        )
        await open_connections(client, args.url, args.clients)
        single = await book_all(client, args.url, work[: args.single], clients=1)
        concurrent = await book_all(client, args.url, work[args.single :], args.clients)
        print("\nno contention: every booking on nights nobody else asks for")
        print(
            f"{'':<16}{'bookings':>9}{'book/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'failed':>9}"
        )
        report_phase("one at a time", single)
        report_phase(f"{args.clients} clients", concurrent)
        uncontended_outcomes = single.outcomes + concurrent.outcomes
        print(f"failures by code: {describe_failures(uncontended_outcomes)}")

        print(f"\ncontention: {CONTENDERS} guests book the same nights of one listing at once")
        print(f"{'round':>5}{'won':>6}{'conflict':>10}{'other':>7}{'wall ms':>10}")
        rounds = await run_rounds(client, args.url, setup)
        for result in rounds:
            report_round(result)
        report_conflict_messages(rounds)
        single_p50_ms = percentiles([outcome.latency for outcome in single.outcomes])[0]
        report_ratio(rounds, single_p50_ms)

    overlaps, active = await audit(args.database_url, setup.all_listings)
    expected = made(uncontended_outcomes) + sum(result.won for result in rounds)
    print(f"\ndouble bookings found by SQL audit: {overlaps}")
    print(f"active bookings on this run's listings: {active} (answered OK: {expected})")

    failed_rounds = sum(not result.ok for result in rounds)
    uncontended_failures = sum(failures(uncontended_outcomes).values())
    healthy = (
        overlaps == 0 and active == expected and not failed_rounds and not uncontended_failures
    )
    print(
        f"result: {'PASS' if healthy else 'FAIL'} ({uncontended_failures} uncontended failures, "
        f"{failed_rounds} failed rounds, {overlaps} double bookings)"
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
