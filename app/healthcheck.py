"""Container health checks, cheap enough to run every few seconds: the standard library only,
nothing of Roost imported. Exit status 0 is healthy.

    python -m app.healthcheck http     # this container's API answers GET /healthz
    python -m app.healthcheck worker   # `roost worker` finished a pass or an event lately
"""

import os
import sys
import time
import urllib.request
from pathlib import Path


def http_healthy(url: str = "http://127.0.0.1:8000/healthz") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a fixed URL)
            status: int = response.status
            return status == 200
    except OSError:
        return False


def worker_healthy(heartbeat: str | None, lease_seconds: float) -> tuple[bool, str]:
    """The worker touches its heartbeat file after every pass (each poll when idle) and every
    event it handles; one silent for two leases has lost its claims to other workers anyway."""
    if not heartbeat:
        return False, "ROOST_WORKER_HEARTBEAT_FILE is not set"
    try:
        age = time.time() - Path(heartbeat).stat().st_mtime
    except OSError:
        return False, f"no heartbeat at {heartbeat} yet"
    if age > 2 * lease_seconds:
        return False, f"last heartbeat {age:.0f} s ago"
    return True, f"last heartbeat {age:.0f} s ago"


def main(argv: list[str]) -> int:
    if argv == ["http"]:
        return 0 if http_healthy() else 1
    if argv == ["worker"]:
        healthy, why = worker_healthy(
            os.environ.get("ROOST_WORKER_HEARTBEAT_FILE"),
            float(os.environ.get("ROOST_WORKER_LEASE_SECONDS", "60")),
        )
        print(why)
        return 0 if healthy else 1
    print("usage: python -m app.healthcheck http|worker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
