"""`serve_balanced` running server processes of an app that costs nothing to start, for
tests/test_serve.py: what it proves is how the processes share one port and stop together, not
the app they run (which `roost serve` starts for real in another test).

    python -m tests.balanced_server PORT
"""

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.processes import serve_balanced, server_options

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def create_app() -> Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]:
    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


if __name__ == "__main__":
    port = int(sys.argv[1])
    options = server_options(1_048_576) | {"lifespan": "off"}
    sys.exit(serve_balanced("127.0.0.1", port, 2, options, app=f"{__spec__.name}:create_app"))
