"""CPU time per search page, in process: compiled plans against graphql-core's ordinary path.

    uv run python bench/execution.py --database-url postgresql://postgres@127.0.0.1:5432/roost_bench5k

The app runs in this process (cache off, no Redis) and is driven through httpx's ASGI transport,
one request at a time, so the figure is the Python work of one request (HTTP framing, strawberry,
execution, JSON) plus the database round trips; both modes alternate in rounds over the same
search mix (bench/search_sql.py, first pages). ``--profile`` writes a cProfile of each mode.
"""

import argparse
import asyncio
import base64
import cProfile
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr
from search_sql import QUERY, searches

from app.http import create_app
from app.settings import Settings
from schema import compiled


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    settings = Settings(
        database_url=args.database_url,
        jwt_secret=SecretStr("bench-secret-" + "x" * 40),
        field_encryption_key=SecretStr(base64.urlsafe_b64encode(b"k" * 32).decode()),
        redis_url=None,
        data_dir=Path(tempfile.mkdtemp(prefix="roost-bench-")),
        search_cache_seconds=0,
        run_worker_in_process=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    bodies = [
        {"query": QUERY, "variables": {"filter": s.filter, "sort": s.sort}}
        for s in searches(args.requests)
    ]
    # The schema's plans, to switch them off and on between rounds.
    [(schema, plans)] = list(compiled._plans.items())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def run(mode: str) -> float:
                if mode == "compiled":
                    compiled._plans[schema] = plans
                else:
                    compiled._plans.pop(schema, None)
                started = time.process_time()
                for body in bodies:
                    response = await client.post("/graphql", json=body)
                    answer = orjson.loads(response.content)
                    if response.status_code != 200 or "errors" in answer:
                        raise SystemExit(f"{mode}: {response.status_code} {answer}")
                return (time.process_time() - started) / len(bodies)

            # Warm-up, and the same answers both ways.
            answers = {}
            for mode in ("ordinary", "compiled"):
                await run(mode)
                answers[mode] = [
                    (await client.post("/graphql", json=body)).content for body in bodies[:20]
                ]
            assert answers["ordinary"] == answers["compiled"], "answers differ"
            results: dict[str, list[float]] = {"ordinary": [], "compiled": []}
            for _ in range(args.rounds):
                for mode in ("ordinary", "compiled"):
                    results[mode].append(await run(mode))
            for mode, times in results.items():
                best = min(times) * 1000
                print(
                    f"{mode:9} CPU ms/request: median {statistics.median(times) * 1000:.2f}, "
                    f"best {best:.2f} ({1000 / best:.0f} requests per CPU second)"
                )
            ratio = statistics.median(results["ordinary"]) / statistics.median(results["compiled"])
            print(f"compiled is {ratio:.2f}x the ordinary path's throughput per CPU second")
            if args.profile:
                for mode in ("ordinary", "compiled"):
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await run(mode)
                    profiler.disable()
                    where = Path(tempfile.gettempdir()) / f"execution-{mode}.prof"
                    profiler.dump_stats(where)
                    print(f"profile: {where}")


if __name__ == "__main__":
    asyncio.run(main())
