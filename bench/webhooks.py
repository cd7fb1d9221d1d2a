"""Webhook benchmark: a burst of Stripe deliveries, duplicated and shuffled, against a real server.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run python bench/webhooks.py

Everything is the bench's own: a database made on DATABASE_URL's server (dropped at the end),
the fake of Stripe's API (tests/fakes/stripe_api.py) on a loopback port, and `roost serve` on
another, pointed at both, with a webhook secret. Then:

  1. Setup through GraphQL: a host, instant-book and request-to-book listings, a few guests,
     --payments bookings (a third each: instant, request, declined card; one night each), and
     a Stripe payment started for each. Each intent is then paid in the fake, as the guest's
     browser would, which makes the event Stripe would send: payment_intent.succeeded for an
     instant booking, payment_intent.amount_capturable_updated (held) for a request,
     payment_intent.payment_failed for a declined card. Each payment also gets the event of
     an earlier moment (payment_intent.processing), so shuffled, about half the payments hear
     of their outcome before the older news. None is sent yet.
  2. The burst: each event once, plus --duplicates of them again (same event id, 10% of the
     1,000 deliveries by default), shuffled, every delivery signed when it is posted, with
     --concurrency requests in flight. Prints deliveries/s and p50/p95/p99 latency, and the
     answers by status and outcome.
  3. A SQL audit: every instant payment SUCCEEDED with its booking CONFIRMED and exactly one
     CAPTURE in the ledger; every request AUTHORIZED with its booking PENDING for the host
     and no CAPTURE; every declined payment FAILED with its booking PENDING for another card
     and no CAPTURE (none moved backwards by the older event); one provider_event per
     distinct event; one BookingConfirmed or BookingRequested per paid booking in the outbox.

Exits non-zero on any failed delivery or audit finding. Each process it starts is stopped by
its pid.
"""

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from strawberry.relay import from_base64

from db.states import BookingStatus, OperationKind, PaymentProvider, PaymentStatus
from services.events import BookingConfirmed, BookingRequested
from tests.fakes.stripe_api import SECRET_KEY, FakeStripe, StripeError, stripe_signature
from tests.helpers import serving

# Not secrets: the throwaway accounts' password and the run's own webhook secret.
PASSWORD = "bench horse battery staple"  # noqa: S105
WEBHOOK_SECRET = "whsec_roost_bench"  # noqa: S105
GUESTS = 4
NIGHTS_PER_LISTING = 300  # one-night stays from tomorrow, well before the 365-day horizon
SETUP_AT_ONCE = 8
INSTANT, REQUEST, DECLINED = "instant", "request", "declined"
OUTCOME_EVENT = {
    INSTANT: "payment_intent.succeeded",
    REQUEST: "payment_intent.amount_capturable_updated",
    DECLINED: "payment_intent.payment_failed",
}
EARLIER_EVENT = "payment_intent.processing"
TOLD = [BookingConfirmed.kind(), BookingRequested.kind()]

REGISTER = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }"
CREATE_LISTING = "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }"
CREATE_BOOKING = "mutation($input: CreateBookingInput!) { createBooking(input: $input) { id } }"
START_PAYMENT = """
mutation($id: ID!) {
  startPayment(bookingId: $id, provider: STRIPE) { clientSecret payment { id } }
}
"""

PAYMENTS = """
SELECT p.id, p.status, b.status AS booking_status,
       count(o.id) FILTER (WHERE o.kind = $2) AS captures
FROM payment p
JOIN booking b ON b.id = p.booking_id
LEFT JOIN payment_operation o ON o.payment_id = p.id
WHERE p.provider = $1
GROUP BY p.id, b.status
"""
OUTBOX = """
SELECT kind, (payload->>'booking_id')::bigint AS booking_id, count(*) AS times
FROM outbox_event WHERE kind = ANY($1::text[])
GROUP BY 1, 2
"""
PROVIDER_EVENTS = (
    "SELECT count(*), count(DISTINCT event_id) FROM provider_event WHERE provider = $1"
)


class SetupFailed(Exception):
    """The server refused a setup step: the bench cannot go on."""


@dataclass(frozen=True)
class Paid:
    """A booking whose Stripe payment was made in the fake, and the events Stripe would send:
    an earlier moment's, then the outcome's."""

    booking_id: int
    payment_id: int
    kind: str  # INSTANT, REQUEST or DECLINED
    events: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Delivery:
    status: int
    outcome: str
    latency: float


# Processes and the database, each the bench's own.


def admin_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead (its query string, if any, kept)."""
    base, question, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}{question}{query}"


@asynccontextmanager
async def own_database(url: str, bench: str = "webhooks") -> AsyncIterator[str]:
    """A database of the bench's own on ``url``'s server, dropped at the end."""
    name = f"roost_bench_{bench}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(admin_url(url), name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def roost_serving(
    database_url: str, stripe_url: str, workers: int, log: Path
) -> AsyncIterator[str]:
    """`roost serve` (which migrates the database) on a free loopback port; its base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ROOST_DATA_DIR": str(log.parent),
        "STRIPE_API_KEY": SECRET_KEY,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_IP": "100000",
        "ROOST_MAX_PENDING_BOOKINGS_PER_GUEST": "100000",
    }
    env.pop("REDIS_URL", None)  # limits and caches in the process: nothing shared with others
    async with serve_roost(env, workers=workers, log=log) as (url, _):
        yield url


@asynccontextmanager
async def serve_roost(
    env: dict[str, str], *, workers: int, log: Path
) -> AsyncIterator[tuple[str, int]]:
    """`roost serve` with ``env`` on a free loopback port: its base URL and pid, once it
    answers; stopped by that pid at the end."""
    port = free_port()
    roost = Path(sys.executable).parent / "roost"
    command = [str(roost), "serve", "--port", str(port), "--workers", str(workers)]
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        server = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        os.close(output)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if server.returncode is not None:
                    raise SetupFailed(f"roost serve stopped; its output is in {log}")
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SetupFailed("roost serve did not answer within a minute")
        yield url, server.pid
    finally:
        if server.returncode is None:
            server.terminate()  # its pid only
            try:
                async with asyncio.timeout(20):
                    await server.wait()
            except TimeoutError:
                server.kill()
                await server.wait()


# Setup, through GraphQL.


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict, token: str | None = None
) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"} if token else None,
    )
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise SetupFailed(f"HTTP {response.status_code}: {response.text[:500]}")
    return body["data"]


async def sign_up(client: httpx.AsyncClient, email: str, role: str) -> str:
    person = {"email": email, "password": PASSWORD, "firstName": "Bench", "lastName": role.title()}
    data = await graphql(client, REGISTER, {"input": {**person, "role": role}})
    return data["register"]["accessToken"]


def listing_input(title: str, instant: bool) -> dict:
    return {
        "title": title,
        "description": "A listing made by a Roost benchmark.",
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
        "amenities": ["wifi"],
        "instantBook": instant,
        "cancellationPolicy": "FLEXIBLE",
        "minNights": 1,
        "maxNights": 28,
    }


def database_id(node_id: str) -> int:
    return int(from_base64(node_id)[1])


async def set_up(client: httpx.AsyncClient, fake: FakeStripe, payments: int) -> list[Paid]:
    """``payments`` bookings, in turn instant, requested and declined, each paid in the fake."""
    host = await sign_up(client, "bench-host@example.com", "HOST")
    guests = [
        await sign_up(client, f"bench-guest{number}@example.com", "GUEST")
        for number in range(GUESTS)
    ]
    per_kind = math.ceil(math.ceil(payments / 3) / NIGHTS_PER_LISTING)
    listings: dict[str, list[str]] = {INSTANT: [], REQUEST: [], DECLINED: []}
    for kind in listings:
        for number in range(per_kind):
            made = listing_input(f"Bench {kind} {number}", instant=kind != REQUEST)
            data = await graphql(client, CREATE_LISTING, {"input": made}, host)
            listings[kind].append(data["createListing"]["id"])
    tomorrow = date.today() + timedelta(days=1)
    gate = asyncio.Semaphore(SETUP_AT_ONCE)

    async def one(number: int) -> Paid:
        kind = (INSTANT, REQUEST, DECLINED)[number % 3]
        of_kind = number // 3
        listing = listings[kind][of_kind % per_kind]
        check_in = tomorrow + timedelta(days=of_kind // per_kind)
        guest = guests[number % GUESTS]
        async with gate:
            booking = await graphql(
                client,
                CREATE_BOOKING,
                {
                    "input": {
                        "listingId": listing,
                        "checkIn": check_in.isoformat(),
                        "checkOut": (check_in + timedelta(days=1)).isoformat(),
                        "guests": 2,
                    }
                },
                guest,
            )
            booking_id = booking["createBooking"]["id"]
            started = (await graphql(client, START_PAYMENT, {"id": booking_id}, guest))[
                "startPayment"
            ]
        # What Stripe.js does on the guest's page, straight into the fake: no webhook is sent.
        intent_id = started["clientSecret"].split("_secret_")[0]
        earlier = fake.event(EARLIER_EVENT, {**fake.intents[intent_id], "status": "processing"})
        try:
            fake.confirm(
                intent_id, "pm_card_chargeDeclined" if kind == DECLINED else "pm_card_visa"
            )
        except StripeError:
            assert kind == DECLINED
        outcome = fake.events[-1]
        assert outcome["type"] == OUTCOME_EVENT[kind], outcome["type"]
        payment_id = database_id(started["payment"]["id"])
        return Paid(database_id(booking_id), payment_id, kind, (earlier, outcome))

    return list(await asyncio.gather(*(one(number) for number in range(payments))))


# The burst.


async def deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> Delivery:
    payload = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": stripe_signature(payload, WEBHOOK_SECRET, int(time.time())),
    }
    started = time.perf_counter()
    try:
        response = await client.post("/webhooks/stripe", content=payload, headers=headers)
    except httpx.HTTPError as error:
        return Delivery(0, type(error).__name__, time.perf_counter() - started)
    latency = time.perf_counter() - started
    try:
        outcome = response.json().get("outcome") or response.text[:100]
    except ValueError:
        outcome = response.text[:100]
    return Delivery(response.status_code, str(outcome), latency)


async def burst(
    client: httpx.AsyncClient, events: list[dict[str, Any]], concurrency: int
) -> tuple[list[Delivery], float]:
    queue = iter(events)
    deliveries: list[Delivery] = []

    async def worker() -> None:
        for event in queue:
            deliveries.append(await deliver(client, event))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return deliveries, time.perf_counter() - started


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds."""
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


# The audit.


async def audit(database_url: str, paid: list[Paid], distinct_events: int) -> list[str]:
    """What is wrong in the database after the burst; empty when nothing is."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = {
            row["id"]: row
            for row in await connection.fetch(
                PAYMENTS, PaymentProvider.STRIPE, OperationKind.CAPTURE
            )
        }
        outbox = Counter(
            {
                (row["kind"], row["booking_id"]): row["times"]
                for row in await connection.fetch(OUTBOX, TOLD)
            }
        )
        recorded, distinct = await connection.fetchrow(PROVIDER_EVENTS, PaymentProvider.STRIPE)
    finally:
        await connection.close()

    expectations = {
        INSTANT: (PaymentStatus.SUCCEEDED, BookingStatus.CONFIRMED, 1, BookingConfirmed.kind()),
        REQUEST: (PaymentStatus.AUTHORIZED, BookingStatus.PENDING, 0, BookingRequested.kind()),
        DECLINED: (PaymentStatus.FAILED, BookingStatus.PENDING, 0, None),
    }
    findings: list[str] = []
    for payment in paid:
        row = rows.get(payment.payment_id)
        status, booking_status, captures, told = expectations[payment.kind]
        expected = (str(status), str(booking_status), captures)
        found = None if row is None else (row["status"], row["booking_status"], row["captures"])
        if found != expected:
            findings.append(f"payment {payment.payment_id}: {found}, expected {expected}")
        if told is not None and (times := outbox[(told, payment.booking_id)]) != 1:
            findings.append(f"booking {payment.booking_id}: {told} x{times}, expected once")
    stray = sum(outbox.values()) - sum(payment.kind != DECLINED for payment in paid)
    if stray > 0:  # a missing one is reported above, by booking
        findings.append(f"{stray} outbox events beyond one per booking")
    if (recorded, distinct) != (distinct_events, distinct_events):
        findings.append(
            f"provider_event: {recorded} rows, {distinct} distinct, expected {distinct_events}"
        )
    return findings


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> int:
    fake = FakeStripe()
    async with (
        serving(fake.app()) as stripe_url,
        roost_serving(database_url, stripe_url, args.workers, workdir / "serve.log") as url,
    ):
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            started = time.perf_counter()
            paid = await set_up(client, fake, args.payments)
            kinds = Counter(payment.kind for payment in paid)
            print(
                f"setup: {len(paid)} Stripe payments ({kinds[INSTANT]} instant, "
                f"{kinds[REQUEST]} requests, {kinds[DECLINED]} declined) in "
                f"{time.perf_counter() - started:.1f} s, roost serve --workers {args.workers} "
                f"at {url}"
            )
            events = [event for payment in paid for event in payment.events]
            deliveries_planned = events + random.sample(events, args.duplicates)
            random.shuffle(deliveries_planned)
            deliveries, elapsed = await burst(client, deliveries_planned, args.concurrency)

    latencies = [delivery.latency for delivery in deliveries]
    p50, p95, p99 = percentiles(latencies)
    answers = Counter((delivery.status, delivery.outcome) for delivery in deliveries)
    print(
        f"\nburst: {len(deliveries)} deliveries ({len(events)} events, {args.duplicates} "
        f"duplicates, shuffled), {args.concurrency} in flight"
    )
    print(f"{'deliveries/s':>13}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    print(
        f"{len(deliveries) / elapsed:>13.1f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}"
        f"{max(latencies) * 1000:>9.1f}"
    )
    print("answers: " + ", ".join(f"{s} {o} x{n}" for (s, o), n in sorted(answers.items())))

    findings = await audit(database_url, paid, len(events))
    for finding in findings[:20]:
        print(f"  {finding}")
    failed = sum(n for (status, _), n in answers.items() if status != 200)
    healthy = not failed and not findings
    print(
        f"\naudit: {len(findings)} findings; result: {'PASS' if healthy else 'FAIL'} "
        f"({failed} failed deliveries)"
    )
    if not healthy:
        errors = [
            line for line in (workdir / "serve.log").read_text().splitlines() if "ERROR" in line
        ]
        print(f"roost serve logged {len(errors)} errors; the first:", *errors[:5], sep="\n  ")
    return 0 if healthy else 1


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL server to make the bench's database on (default: $DATABASE_URL)",
    )
    parser.add_argument(
        "--payments", type=int, default=450, help="payments, two distinct events each"
    )
    parser.add_argument("--duplicates", type=int, default=100, help="events delivered twice")
    parser.add_argument("--concurrency", type=int, default=16, help="deliveries in flight")
    parser.add_argument("--workers", type=int, default=1, help="roost serve --workers")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    if min(args.payments, args.concurrency, args.workers) < 1:
        parser.error("--payments, --concurrency and --workers must be at least 1")
    if not 0 <= args.duplicates <= 2 * args.payments:
        parser.error("--duplicates must be between 0 and twice --payments")

    with tempfile.TemporaryDirectory(prefix="roost-bench-webhooks-") as workdir:
        async with own_database(args.database_url) as database_url:
            try:
                return await run(args, database_url, Path(workdir))
            except SetupFailed as error:
                print(f"setup failed: {error}", file=sys.stderr)
                return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
