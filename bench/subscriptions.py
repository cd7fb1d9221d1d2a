"""Subscription benchmark: 1,000 open notification subscriptions on one server process, and how
long a booking request takes to reach every subscriber of its host.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/subscriptions.py

(add --no-redis for the in-process fan-out). Everything is the bench's own: a database made on
DATABASE_URL's server (dropped at the end) and `roost serve` (one process, its worker in the
process, woken by the outbox bell) on a loopback port, with Redis pub/sub under a prefix of the
run's own when REDIS_URL is given. Then:

  1. Setup through GraphQL: --hosts hosts with one request-to-book listing each, a crowd host
     with one more, and a few guests.
  2. Spread: --connections websockets (graphql-transport-ws, signed in by connection_init's
     authorization; a host's devices share its session), --devices-per-host per host, each
     subscribed to `notifications { id kind title body }`. Per round (--rounds), a guest books
     one host's listing and pays with the TEST provider (createBooking, startPayment,
     confirmTestPayment); the delay is from confirmTestPayment's answer to the arrival of
     BOOKING_REQUESTED at each of that host's devices.
  3. Fan-out: those connections closed, --connections again, all the crowd host's: one
     booking, one notification, --connections deliveries, per round.

The server's memory per connection is its RSS (children included) after the connections are
open (acknowledged), and again after they subscribed, less its RSS before, over the count. The
client is one asyncio loop (uvloop) in this process, which only stamps each frame as it arrives
and reads the frames after the round; its CPU time within a round's window is printed, so a
client that became the bottleneck would show. Exits non-zero if any expected delivery is
missing, or a frame reached a device it was not meant for.

The client offers permessage-deflate, as browsers do; Roost declines it (app/processes.py).

On this machine (2 vCPUs of an AMD EPYC, shared by the server, this client, PostgreSQL 15 and
Redis 7), defaults (100 hosts x 10 devices, 1,000 connections, 20 rounds a variant), two runs
each (ranges); 0 missing and 0 stray in every run:

  pub/sub      variant   deliveries   p50 ms    p95 ms    p99 ms    max ms    client CPU
  Redis        spread           200    60-64    77-101   111-155   111-156       1%
  Redis        fan-out       20,000  116-135   180-204   191-223   199-234      30%
  in process   spread           200       47        71        98        98       1%
  in process   fan-out       20,000       89       144       162       177      31%

  server RSS: 190 MiB before, 223 MiB with 1,000 connections acknowledged (34 KiB each),
  246 MiB with each subscribed (57 KiB each).

The goal, p95 under 250 ms, is met in both variants. Where the time goes (timing logs in a
copy of the server):
  - commit to publish, ~60 ms, in either variant: the worker's chain of transactions (the claim,
    PaymentAuthorized's handler, BookingRequested's mail, notify and live handlers, then a
    second claim for NotificationCreated, whose handler reads the notification and publishes).
  - fan-out: the websocket send and strawberry's stream for each listener; the document is
    executed once for all of one viewer's identical subscriptions (schema/live_events.py).
What it took, fan-out p95 with Redis: 675-680 ms at first; 257-338 ms with the loaders emptied
in place (not fourteen new per listener per event) and a sub-field memo per event (graphql-core
kept one entry per event for a subscription's life); ~300 ms without permessage-deflate (a
quarter of each send; memory per connection 77 KiB to 34 KiB) and with young collections every
50,000 objects (app/http.py: fewer objects reach the old generation, so the full collections
that walk every connection's objects, 250-350 ms with 1,000 open, came far less often: p99 of
the spread rounds 400 to 150 ms); 180-204 ms with one execution per viewer and event.

Each process it starts is stopped by its pid.
"""

import argparse
import asyncio
import itertools
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import psutil
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.webhooks import (
    SetupFailed,
    graphql,
    listing_input,
    own_database,
    serve_roost,
    sign_up,
)

PROTOCOL = "graphql-transport-ws"
GUESTS = 4
OPEN_AT_ONCE = 50
SETUP_AT_ONCE = 8
ROUND_TIMEOUT_SECONDS = 10.0
BOOKING_REQUESTED = "BOOKING_REQUESTED"

CREATE_LISTING = "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }"
CREATE_BOOKING = "mutation($input: CreateBookingInput!) { createBooking(input: $input) { id } }"
START_PAYMENT = """
mutation($id: ID!) { startPayment(bookingId: $id, provider: TEST) { payment { id } } }
"""
CONFIRM_PAYMENT = """
mutation($id: ID!) { confirmTestPayment(paymentId: $id, succeed: true) { id status } }
"""
NOTIFICATIONS = "subscription { notifications { id kind title body } }"


@dataclass
class Host:
    name: str
    token: str
    listing_id: str


@dataclass
class Round:
    """One booking: which host's devices should hear of it, and when they did."""

    host: str
    expected: int
    arrived: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Device:
    """One open websocket of a host, subscribed to its notifications."""

    host: str
    ws: ClientConnection
    heard: list[tuple[float, str]] = field(default_factory=list)  # (perf_counter, frame)
    reader: asyncio.Task[None] | None = None


@dataclass
class Outcome:
    delays: list[float] = field(default_factory=list)  # seconds
    missing: int = 0
    stray: int = 0
    rounds: int = 0
    client_cpu: float = 0.0  # seconds of this process's CPU within the rounds' windows
    window: float = 0.0  # seconds from the answers to the last arrivals


class Crowd:
    """The open devices, and the round they are listening for."""

    def __init__(self) -> None:
        self.devices: list[Device] = []
        self.current: Round | None = None
        self.stray = 0

    def heard(self, device: Device, frame: str) -> None:
        device.heard.append((time.perf_counter(), frame))
        current = self.current
        if current is not None and current.host == device.host:
            current.arrived += 1
            if current.arrived >= current.expected:
                current.done.set()
        else:
            self.stray += 1

    async def listen(self, device: Device) -> None:
        try:
            async for frame in device.ws:
                self.heard(device, frame if isinstance(frame, str) else frame.decode())
        except ConnectionClosed:
            pass


# The server and its database.


@dataclass
class Server:
    url: str
    pid: int

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    def rss(self) -> int:
        """Resident bytes of the server and its children."""
        process = psutil.Process(self.pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


@asynccontextmanager
async def roost_serving(
    database_url: str, redis_url: str | None, log: Path
) -> AsyncIterator[Server]:
    """`roost serve`, one process with its worker, on a free loopback port."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ROOST_DATA_DIR": str(log.parent),
        "ROOST_RUN_WORKER_IN_PROCESS": "true",
        "ROOST_AUTH_ATTEMPTS_PER_MINUTE_PER_IP": "100000",
        "ROOST_MAX_PENDING_BOOKINGS_PER_GUEST": "100000",
        # Setup signs up a hundred accounts; hashing their passwords is no part of the measure.
        "ROOST_ARGON2_TIME_COST": "1",
        "ROOST_ARGON2_MEMORY_KIB": "8192",
        # No connection may close with its token during the run.
        "ROOST_ACCESS_TOKEN_MINUTES": "60",
    }
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        env["ROOST_REDIS_PREFIX"] = f"roost-bench-subscriptions-{os.getpid()}:"
    async with serve_roost(env, workers=1, log=log) as (url, pid):
        yield Server(url, pid)


# Setup, through GraphQL.


async def a_host(client: httpx.AsyncClient, name: str) -> Host:
    token = await sign_up(client, f"bench-{name}@example.com", "HOST")
    made = await graphql(
        client, CREATE_LISTING, {"input": listing_input(f"Bench {name}", instant=False)}, token
    )
    return Host(name, token, made["createListing"]["id"])


async def set_up(client: httpx.AsyncClient, hosts: int) -> tuple[list[Host], Host, list[str]]:
    gate = asyncio.Semaphore(SETUP_AT_ONCE)

    async def host(name: str) -> Host:
        async with gate:
            return await a_host(client, name)

    made = await asyncio.gather(*(host(f"host{number}") for number in range(hosts + 1)))
    guests = [
        await sign_up(client, f"bench-guest{number}@example.com", "GUEST")
        for number in range(GUESTS)
    ]
    return list(made[:-1]), made[-1], guests


async def request_and_pay(
    client: httpx.AsyncClient, host: Host, guest: str, check_in: date
) -> float:
    """Books a night of the host's listing and pays (the TEST provider holds the card, so the
    host is asked); answers when the last answer came, by perf_counter."""
    stay = {"checkIn": check_in.isoformat(), "checkOut": (check_in + timedelta(1)).isoformat()}
    made = await graphql(
        client,
        CREATE_BOOKING,
        {"input": {"listingId": host.listing_id, "guests": 2, **stay}},
        guest,
    )
    started = await graphql(client, START_PAYMENT, {"id": made["createBooking"]["id"]}, guest)
    payment_id = started["startPayment"]["payment"]["id"]
    await graphql(client, CONFIRM_PAYMENT, {"id": payment_id}, guest)
    return time.perf_counter()


# The websockets.


async def open_device(url: str, host: Host) -> Device:
    ws = await connect(url, subprotocols=[PROTOCOL], ping_interval=None, max_queue=None)  # type: ignore[list-item]
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {host.token}"}}
    await ws.send(orjson.dumps(init).decode())
    ack = orjson.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise SetupFailed(f"no connection_ack: {ack}")
    return Device(host.name, ws)


async def open_devices(crowd: Crowd, url: str, owners: list[Host]) -> None:
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def one(host: Host) -> Device:
        async with gate:
            return await open_device(url, host)

    crowd.devices = list(await asyncio.gather(*(one(host) for host in owners)))


async def subscribe_all(crowd: Crowd, settle_seconds: float) -> None:
    """Subscribes every device; each is answered a ping after its subscribe, and the server is
    given ``settle_seconds`` more for every subscription to reach its channel (the protocol
    does not say when a subscription listens)."""
    for number, device in enumerate(crowd.devices):
        subscribe = {"type": "subscribe", "id": str(number), "payload": {"query": NOTIFICATIONS}}
        await device.ws.send(orjson.dumps(subscribe).decode())
        await device.ws.send('{"type":"ping"}')
    for device in crowd.devices:
        pong = orjson.loads(await device.ws.recv())
        if pong.get("type") != "pong":
            raise SetupFailed(f"expected a pong after subscribing, got {pong}")
    for device in crowd.devices:
        device.reader = asyncio.create_task(crowd.listen(device))
    await asyncio.sleep(settle_seconds)
    crowd.stray = 0  # anything before the first round is not counted against a round


async def close_all(crowd: Crowd) -> None:
    await asyncio.gather(*(device.ws.close() for device in crowd.devices))
    for device in crowd.devices:
        if device.reader is not None:
            await device.reader
    crowd.devices = []


# The rounds.


async def rounds(
    crowd: Crowd,
    client: httpx.AsyncClient,
    plan: Iterable[tuple[Host, date]],
    guests: list[str],
) -> Outcome:
    outcome = Outcome()
    guest_turn = itertools.cycle(guests)
    for host, check_in in plan:
        expected = sum(device.host == host.name for device in crowd.devices)
        current = Round(host.name, expected)
        for device in crowd.devices:
            device.heard.clear()
        crowd.current = current
        answered = await request_and_pay(client, host, next(guest_turn), check_in)
        cpu_before = time.process_time()
        try:
            await asyncio.wait_for(current.done.wait(), timeout=ROUND_TIMEOUT_SECONDS)
        except TimeoutError:
            pass
        outcome.window += time.perf_counter() - answered
        outcome.client_cpu += time.process_time() - cpu_before
        await asyncio.sleep(0.05)  # a frame sent twice, or to a device of another host, shows
        crowd.current = None
        outcome.rounds += 1
        delays, missing = delivered(crowd.devices, host.name, answered)
        outcome.delays += delays
        outcome.missing += missing
    outcome.stray = crowd.stray
    return outcome


def delivered(devices: list[Device], host: str, answered: float) -> tuple[list[float], int]:
    """The delays of the host's devices' BOOKING_REQUESTED (one notification, the same for
    all), and how many devices did not hear it."""
    delays: list[float] = []
    ids: set[str] = set()
    missing = 0
    for device in devices:
        if device.host != host:
            continue
        found = None
        for arrived, frame in device.heard:
            message = orjson.loads(frame)
            if message.get("type") != "next" or "errors" in message["payload"]:
                print(f"  unexpected frame: {frame[:300]}")
                continue
            notification = message["payload"]["data"]["notifications"]
            if notification["kind"] == BOOKING_REQUESTED and found is None:
                found = arrived
                ids.add(notification["id"])
        if found is None:
            missing += 1
        else:
            delays.append(found - answered)
    if len(ids) > 1:
        print(f"  the devices of {host} heard {len(ids)} different notifications")
    return delays, missing


def summary(name: str, outcome: Outcome, expected_per_round: str) -> str:
    delays = sorted(outcome.delays)
    if len(delays) >= 2:
        q = statistics.quantiles(delays, n=100, method="inclusive")
        figures = f"{q[49] * 1000:>8.1f}{q[94] * 1000:>8.1f}{q[98] * 1000:>8.1f}"
        figures += f"{delays[-1] * 1000:>8.1f}"
    else:
        figures = f"{'-':>8}" * 4
    busy = outcome.client_cpu / outcome.window if outcome.window else 0.0
    return (
        f"{name:<10}{outcome.rounds:>7}{expected_per_round:>10}{len(delays):>11}"
        f"{outcome.missing:>9}{outcome.stray:>7}{figures}{busy:>12.0%}"
    )


HEADER = (
    f"{'variant':<10}{'rounds':>7}{'per round':>10}{'deliveries':>11}{'missing':>9}"
    f"{'stray':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'client CPU':>12}"
)


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> int:
    redis_url = None if args.no_redis else os.environ.get("REDIS_URL")
    log = workdir / "serve.log"
    async with (
        roost_serving(database_url, redis_url, log) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
        AsyncExitStack() as stack,
    ):
        started = time.perf_counter()
        hosts, crowd_host, guests = await set_up(client, args.hosts)
        print(
            f"setup: {len(hosts) + 1} hosts with a request-to-book listing each, {len(guests)} "
            f"guests in {time.perf_counter() - started:.1f} s; roost serve (1 process, worker "
            f"in process, pub/sub {'Redis' if redis_url else 'in process'}) at {server.url}"
        )
        crowd = Crowd()
        stack.push_async_callback(close_all, crowd)
        tomorrow = date.today() + timedelta(days=1)

        # Spread: devices_per_host devices for each host, in turn, up to --connections.
        await asyncio.sleep(1)
        before = server.rss()
        owners = [
            hosts[number // args.devices_per_host % len(hosts)]
            for number in range(args.connections)
        ]
        started = time.perf_counter()
        await open_devices(crowd, server.ws_url, owners)
        opened_in = time.perf_counter() - started
        await asyncio.sleep(1)
        opened = server.rss()
        await subscribe_all(crowd, args.settle)
        subscribed = server.rss()
        count = len(crowd.devices)
        print(
            f"{count} connections opened in {opened_in:.1f} s; server RSS {before / 2**20:.0f} "
            f"MiB before, {opened / 2**20:.0f} MiB open ({(opened - before) / count / 1024:.1f} "
            f"KiB each), {subscribed / 2**20:.0f} MiB subscribed "
            f"({(subscribed - before) / count / 1024:.1f} KiB each)"
        )
        listened = sorted({device.host for device in crowd.devices})
        by_name = {host.name: host for host in hosts}
        spread_plan = [
            (by_name[listened[number % len(listened)]], tomorrow + timedelta(days=number))
            for number in range(args.rounds)
        ]
        random.shuffle(spread_plan)
        spread = await rounds(crowd, client, spread_plan, guests)
        await close_all(crowd)

        # Fan-out: every connection the crowd host's.
        await open_devices(crowd, server.ws_url, [crowd_host] * args.connections)
        await subscribe_all(crowd, args.settle)
        fanned_rss = server.rss()
        fan_plan = [
            (crowd_host, tomorrow + timedelta(days=number)) for number in range(args.rounds)
        ]
        fan_out = await rounds(crowd, client, fan_plan, guests)
        print(
            f"fan-out: {len(crowd.devices)} connections of one host subscribed, server RSS "
            f"{fanned_rss / 2**20:.0f} MiB"
        )

    print()
    print(HEADER)
    print(summary("spread", spread, f"{args.devices_per_host}"))
    print(summary("fan-out", fan_out, f"{args.connections}"))
    lost = spread.missing + fan_out.missing
    stray = spread.stray + fan_out.stray
    healthy = not lost and not stray
    print(f"\nresult: {'PASS' if healthy else 'FAIL'} ({lost} missing, {stray} stray)")
    errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
    if errors:
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
        "--no-redis", action="store_true", help="fan out in process even if REDIS_URL is set"
    )
    parser.add_argument("--hosts", type=int, default=100, help="hosts for the spread rounds")
    parser.add_argument("--devices-per-host", type=int, default=10, help="in the spread rounds")
    parser.add_argument("--connections", type=int, default=1000, help="open websockets")
    parser.add_argument("--rounds", type=int, default=20, help="bookings per variant")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds for subscriptions to start listening"
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    if min(args.hosts, args.devices_per_host, args.connections, args.rounds) < 1:
        parser.error("--hosts, --devices-per-host, --connections and --rounds must be at least 1")
    if args.rounds > 300:
        parser.error("--rounds must be at most 300 (one night each, within the calendar)")
    # Two file descriptors a connection on this machine: the client's and the server's.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections)), hard))

    with tempfile.TemporaryDirectory(prefix="roost-bench-subscriptions-") as workdir:
        async with own_database(args.database_url, "subscriptions") as database_url:
            try:
                return await run(args, database_url, Path(workdir))
            except SetupFailed as error:
                print(f"setup failed: {error}", file=sys.stderr)
                return 2


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
