"""A worker process for the crash test: it claims events, and stalls inside the handler of
BookingConfirmed (after writing ``marker``) until it is killed.

    python -m tests.worker_child DATABASE_URL NOW_ISO MARKER_PATH
"""

import asyncio
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from app.worker import Worker
from db.database import Database
from gateways.email import ConsoleMailer
from services.event_handlers import HANDLERS, Handler, Handlers
from services.events import BookingConfirmed
from services.payments import Gateways


async def _stall_forever(marker: Path) -> None:
    await asyncio.to_thread(marker.write_text, "claimed")
    await asyncio.sleep(3600)


class StallOnConfirmation(Handlers):
    """Every handler as it is, but those of BookingConfirmed stall."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def of(self, kind: str) -> Mapping[str, Handler[Any]]:
        handlers = HANDLERS.of(kind)
        if kind != BookingConfirmed.kind():
            return handlers
        return {name: lambda *_: _stall_forever(self.marker) for name in handlers}


async def main(url: str, now: datetime, marker: Path) -> None:
    worker = Worker(
        Database(url),
        clock=lambda: now,
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        handlers=StallOnConfirmation(marker),
    )
    await worker.run_once()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])))
