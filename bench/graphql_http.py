"""Throughput and latency of the GraphQL endpoint's fixed costs, against a running server.

    uv run roost serve &                       # in another terminal
    uv run python bench/graphql_http.py --url http://127.0.0.1:8000/graphql

Runs each operation for a bounded number of requests at the given concurrency and prints
requests per second and p50/p95/p99 latency. Only the request path is measured: no business
data is involved yet (the search benchmark arrives with listings).
"""

import argparse
import asyncio
import statistics
import time

import httpx
from strawberry.relay import to_base64


def build_node_query() -> tuple[str, dict[str, str]]:
    variables = {f"id{i}": to_base64("User", i + 1) for i in range(5)}
    params = ", ".join(f"$id{i}: ID!" for i in range(5))
    fields = " ".join(
        f"u{i}: node(id: $id{i}) {{ ... on User {{ id firstName lastName roles createdAt }} }}"
        for i in range(5)
    )
    return f"query Users({params}) {{ {fields} }}", variables


async def run(url: str, query: str, variables: dict | None, requests: int, concurrency: int):
    latencies: list[float] = []
    failures = 0
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            for _ in remaining:
                started = time.perf_counter()
                response = await client.post(url, json={"query": query, "variables": variables})
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, quantiles[49], quantiles[94], quantiles[98], failures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    node_query, node_variables = build_node_query()
    operations = {
        "{ __typename }": ("{ __typename }", None),
        "5 x node(User)": (node_query, node_variables),
        "validation error": ("{ notAField }", None),
    }
    print(f"{args.requests} requests each, concurrency {args.concurrency}, {args.url}")
    print(f"{'operation':<20}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'non-200':>9}")
    for name, (query, variables) in operations.items():
        await run(args.url, query, variables, 100, args.concurrency)  # warm up
        rps, p50, p95, p99, failures = await run(
            args.url, query, variables, args.requests, args.concurrency
        )
        print(
            f"{name:<20}{rps:>8.0f}{p50 * 1000:>9.1f}{p95 * 1000:>9.1f}{p99 * 1000:>9.1f}"
            f"{failures:>9}"
        )


if __name__ == "__main__":
    asyncio.run(main())
