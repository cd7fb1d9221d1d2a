"""Whether a failed sign-in takes as long for an unknown email as for a wrong password.

    createdb -h 127.0.0.1 -U postgres roost_bench
    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/roost_bench
    uv run roost migrate && uv run python bench/enumeration.py

Any migrated database will do: it signs up one account (bench-enumeration-<random>@example.com)
and deletes it at the end. Runs the app in process with production argon2 parameters (or
--time-cost/--memory-kib), and sends `login` with a wrong password for that account and for
unknown addresses, alternating, --rounds times each. Prints the median and spread of each, and
their ratio: near 1.00 means timing tells nothing about which addresses have accounts. The test
suite proves the cause (both do the same argon2 work, tests/test_accounts.py); this shows the
effect, which a busy machine blurs, so it is never a timed assertion in the suite.
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
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import delete

from app.http import create_app
from app.settings import Settings
from db.models import User

LOGIN = """
mutation($email: String!, $password: String!) { login(email: $email, password: $password) {
  accessToken
} }
"""
REGISTER = """
mutation($input: RegisterInput!) { register(input: $input) { accessToken } }
"""
PASSWORD = "a long and honest passphrase"  # noqa: S105 (an account made and deleted here)


async def failed_login(client: httpx.AsyncClient, email: str) -> float:
    """Seconds one refused sign-in takes, from request to answer."""
    started = time.perf_counter()
    response = await client.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": email, "password": "wrong!"}}
    )
    elapsed = time.perf_counter() - started
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", response.text
    return elapsed


def describe(label: str, times: list[float], reference: float) -> None:
    median = statistics.median(times)
    low, high = min(times), max(times)
    print(
        f"  {label:<34} median {median * 1e3:7.1f} ms  (min {low * 1e3:7.1f}, max "
        f"{high * 1e3:7.1f})  {median / reference:5.2f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--time-cost", type=int, default=3)
    parser.add_argument("--memory-kib", type=int, default=65_536)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL (a migrated database)")
    settings = Settings(
        database_url=args.database_url,
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        field_encryption_key=SecretStr(base64.urlsafe_b64encode(os.urandom(32)).decode()),
        data_dir=Path(tempfile.mkdtemp(prefix="roost-bench-")),
        redis_url=None,
        email_backend="file",
        run_worker_in_process=False,
        log_level="WARNING",
        argon2_time_cost=args.time_cost,
        argon2_memory_kib=args.memory_kib,
        # Every attempt must reach the password check, not the rate limit.
        auth_attempts_per_minute_per_ip=1_000_000,
        auth_attempts_per_minute_per_account=1_000_000,
    )
    email = f"bench-enumeration-{uuid.uuid4().hex[:12]}@example.com"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=60
        ) as client:
            registration = {"email": email, "password": PASSWORD, "firstName": "B", "lastName": "E"}
            response = await client.post(
                "/graphql", json={"query": REGISTER, "variables": {"input": registration}}
            )
            assert "errors" not in response.json(), response.text
            try:
                # One of each first: the first unknown address makes the stand-in hash.
                await failed_login(client, email)
                await failed_login(client, f"nobody-{uuid.uuid4().hex}@example.com")
                known, unknown = [], []
                for _ in range(args.rounds):
                    known.append(await failed_login(client, email))
                    unknown.append(
                        await failed_login(client, f"nobody-{uuid.uuid4().hex}@example.com")
                    )
            finally:
                await app.state.database.transaction(
                    lambda session: session.execute(delete(User).where(User.email == email))
                )
    reference = statistics.median(known)
    print(
        f"refused sign-ins through the app in process, argon2id t={args.time_cost} "
        f"m={args.memory_kib} KiB, {args.rounds} of each, alternating:"
    )
    describe("wrong password (reference)", known, reference)
    describe("unknown email", unknown, reference)


if __name__ == "__main__":
    asyncio.run(main())
