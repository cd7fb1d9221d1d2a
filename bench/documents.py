"""How long the worst documents we can build hold the server, and whether it keeps answering.

    uv run python bench/documents.py                       # parse + validate + cost, in process
    uv run python bench/documents.py --url http://127.0.0.1:8000   # against a running server

In process, each document is checked as a new one (no cache), five times; the table shows the
median and the slowest. Against a server, each document is sent once on its own (the answer's
time and code), then ten different hostile documents at a time, four rounds, while `/healthz`
is asked every 10 ms: its slowest answer is what a load balancer would see.
"""

import argparse
import asyncio
import gc
import statistics
import time
import uuid

import httpx

from schema.limits import DocumentLimits, query_cost
from schema.root import build_schema


def doubling(levels: int, on: str, leaf: str) -> str:
    fragments = [f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return " ".join([*fragments, f"fragment F{levels} on {on} {{ {leaf} }}"])


def documents() -> dict[str, str]:
    """The worst documents we could build, each as big as the limits let it be."""
    limits = DocumentLimits()
    tokens = limits.max_tokens - 10  # room for the braces and a comment
    return {
        "doubling fragments, Query": "{ ...F0 } " + doubling(30, "Query", "__typename"),
        "doubling fragments, User": "{ me { ...F0 } } " + doubling(30, "User", "firstName"),
        "doubling in a connection": "{ searchListings { edges { node { ...F0 } } } } "
        + doubling(30, "Listing", "title"),
        "__typename, as many as fit": "{" + " __typename" * tokens + "}",
        "me { id }, as many as fit": "{" + " me { id }" * (tokens // 4) + "}",
        "conflicting arguments": "{"
        + "".join(
            f" a: searchListings(first: {i}) {{ totalCount }}" for i in range(1, tokens // 11)
        )
        + "}",
        "199 levels of nesting": "{" + " a {" * 199 + " b" + " }" * 199 + " }",
        "fragment chain, as long as fits": "{ me { ...N0 } } "
        + " ".join(
            f"fragment N{i} on User {{ firstName ...N{i + 1} }}" for i in range(tokens // 10)
        )
        + f" fragment N{tokens // 10} on User {{ id }}",
        "60 fragments x 5 spreads": "{"
        + " ".join(f" ...G{i}" for i in range(60))
        + " } "
        + " ".join(
            f"fragment G{i} on Query {{ me {{ id }} {' '.join(f'...H{j}' for j in range(5))} }}"
            for i in range(60)
        )
        + " "
        + " ".join(f"fragment H{j} on Query {{ __typename }}" for j in range(5)),
        "list literal, as long as fits": "{ node(id: [" + "1," * (tokens - 10) + "]) { id } }",
        "string of the longest length": '{ node(id: "'
        + "a" * (limits.max_length - 30)
        + '") { id } }',
        "comment of the longest length": "#" + "x" * (limits.max_length - 20) + "\n{ __typename }",
        "1 MB of comment": "#" + "x" * 1_000_000 + "\n{ __typename }",
        "one token too many": "{" + " __typename" * (limits.max_tokens - 1) + "}",
    }


def in_process() -> None:
    schema = build_schema()
    gc.collect()
    gc.freeze()  # as the server does once it has started
    store = schema.documents
    print(f"{'document':<32}{'chars':>9}{'median ms':>11}{'max ms':>9}  answer")
    for name, query in documents().items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            checked = store.check_now(query)
            if not checked.errors:
                query_cost(store.schema, checked.document, None, {})
            times.append((time.perf_counter() - started) * 1000)
        answer = checked.errors[0].message[:48] if checked.errors else "valid"
        print(
            f"{name:<32}{len(query):>9,}{statistics.median(times):>11.1f}{max(times):>9.1f}"
            f"  {answer}"
        )


async def against(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.get("/healthz")  # the client's own first-request costs, out of the way
        print(f"{'document':<32}{'ms':>8}  code")
        for name, query in documents().items():
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": query})
            elapsed = (time.perf_counter() - started) * 1000
            errors = response.json().get("errors") if response.status_code < 500 else None
            code = errors[0]["extensions"]["code"] if errors else response.status_code
            print(f"{name:<32}{elapsed:>8.1f}  {code}")

        heavy = [q for n, q in documents().items() if "1 MB" not in n and "too many" not in n]
        healthz: list[float] = []
        stop = asyncio.Event()

        async def poll() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                healthz.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.01)

        async def hostile(query: str) -> float:
            started = time.perf_counter()
            # A fresh comment makes each a document the server has not seen.
            await client.post("/graphql", json={"query": f"# {uuid.uuid4()}\n{query}"})
            return (time.perf_counter() - started) * 1000

        poller = asyncio.create_task(poll())
        answers: list[float] = []
        for round_ in range(4):
            batch = [heavy[(round_ * 10 + i) % len(heavy)] for i in range(10)]
            answers += await asyncio.gather(*(hostile(q) for q in batch))
        stop.set()
        await poller
        print(
            f"\n10 hostile documents at once, 4 rounds: their answers p50 "
            f"{statistics.median(answers):.0f} ms, max {max(answers):.0f} ms; /healthz "
            f"{len(healthz)} answers, p50 {statistics.median(healthz):.1f} ms, "
            f"p95 {statistics.quantiles(healthz, n=20)[18]:.1f} ms, max {max(healthz):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="a running Roost, like http://127.0.0.1:8000")
    args = parser.parse_args()
    if args.url:
        asyncio.run(against(args.url))
    else:
        in_process()


if __name__ == "__main__":
    main()
