"""What checking an access token costs a request, with the memory of ended sessions and without.

    createdb -h 127.0.0.1 -U postgres roost_bench
    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/roost_bench
    uv run roost migrate && uv run python bench/token_check.py

Any migrated database will do (0006 or later); nothing is written to it. Measures, in one run:

  1. the check alone (auth.viewer.authenticate), one at a time: the signature only (no session
     check, the reference), then with the listener up (a dict lookup), then with it stopped (a
     query per check, as during start-up or an outage), and a bare ``SELECT 1`` on the same pool;
  2. whole requests (``{ __typename }`` with a token) through the app in process, sequential and
     16 at once, listener up and stopped, against the same request with no token.

Prints microseconds per check or request, and each as a multiple of its reference.
"""

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.http import create_app
from app.settings import Settings
from auth.revocations import RevokedSessions
from auth.tokens import AccessTokens
from auth.viewer import authenticate
from db.database import Database
from db.raw import fetch

PING = {"query": "{ __typename }"}


async def per_call(work: Callable[[], Awaitable[object]], count: int) -> float:
    """Median microseconds of one call, over five batches of ``count``."""
    for _ in range(min(count, 200)):
        await work()
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            await work()
        batches.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(batches)


async def concurrent(work: Callable[[], Awaitable[object]], count: int, at_once: int) -> float:
    """Microseconds per call of ``count`` calls, ``at_once`` in flight."""
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            await work()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(at_once)))
    return (time.perf_counter() - started) / count * 1e6


async def wait_trusted(revoked: RevokedSessions) -> None:
    async with asyncio.timeout(10):
        while not revoked.trusted:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def show(label: str, micros: float, reference: float) -> None:
    print(f"  {label:<54} {micros:8.1f} us {micros / reference:6.2f}x")


async def bench_checks(database_url: str, count: int) -> None:
    database = Database(database_url)
    tokens = AccessTokens(
        secret=secrets.token_urlsafe(32),
        issuer="roost",
        audience="roost-api",
        lifetime=timedelta(minutes=15),
    )
    header = "Bearer " + tokens.issue(1, ["GUEST"], session_id=uuid.uuid4())
    revoked = RevokedSessions(database, token_lifetime=tokens.lifetime)
    revoked.start()
    try:

        async def signature_only() -> object:
            return tokens.decode(header.removeprefix("Bearer "))

        await wait_trusted(revoked)
        decode = await per_call(signature_only, count)
        cached = await per_call(lambda: authenticate(header, tokens, revoked), count)
        ping = await per_call(lambda: fetch(database, "SELECT 1"), count)
        await revoked.stop()
        direct = await per_call(lambda: authenticate(header, tokens, revoked), count)
    finally:
        await revoked.stop()
        await database.dispose()
    print(f"the check alone, one at a time ({count} x 5):")
    show("signature only (reference)", decode, decode)
    show("signature + memory of ended sessions", cached, decode)
    show("signature + a query (listener down)", direct, decode)
    show("a bare SELECT 1 on the same pool", ping, decode)


async def bench_requests(database_url: str, count: int) -> None:
    settings = Settings(
        database_url=database_url,
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        field_encryption_key=SecretStr(base64.urlsafe_b64encode(os.urandom(32)).decode()),
        data_dir=Path(tempfile.mkdtemp(prefix="roost-bench-")),
        run_worker_in_process=False,
        log_level="WARNING",
        search_cache_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        revoked: RevokedSessions = services.revoked_sessions
        token = services.session_policy.access_tokens.issue(1, ["GUEST"], session_id=uuid.uuid4())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def anonymous() -> None:
                assert (await client.post("/graphql", json=PING)).status_code == 200

            async def with_token() -> None:
                response = await client.post(
                    "/graphql", json=PING, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.json() == {"data": {"__typename": "Query"}}

            await wait_trusted(revoked)
            results = {
                "no token (reference)": (
                    await per_call(anonymous, count),
                    await concurrent(anonymous, count * 5, 16),
                ),
                "token, listener up": (
                    await per_call(with_token, count),
                    await concurrent(with_token, count * 5, 16),
                ),
            }
            await revoked.stop()
            results["token, listener down (a query each)"] = (
                await per_call(with_token, count),
                await concurrent(with_token, count * 5, 16),
            )
    reference_one, reference_many = results["no token (reference)"]
    print(f"whole requests, {{ __typename }} in process ({count} x 5 one at a time; 16 at once):")
    for label, (one, many) in results.items():
        show(label + ", one at a time", one, reference_one)
        show(label + ", 16 at once", many, reference_many)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--count", type=int, default=2_000)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL (a migrated database)")
    await bench_checks(args.database_url, args.count)
    await bench_requests(args.database_url, args.count // 4)


if __name__ == "__main__":
    asyncio.run(main())
