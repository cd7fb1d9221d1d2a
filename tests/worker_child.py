"""A worker process for the crash test: it claims events, and stalls inside the handler of
BookingConfirmed (after writing ``marker``) until it is killed.

    python -m tests.worker_child DATABASE_URL NOW_ISO MARKER_PATH
"""

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from app.worker import Worker
from db.database import Database
from gateways.email import ConsoleMailer
from services.event_handlers import HANDLERS
from services.payments import Gateways


async def main(url: str, now: datetime, marker: Path) -> None:
    async def stall(*_: object) -> None:
        await asyncio.to_thread(marker.write_text, "claimed")
        await asyncio.sleep(3600)

    worker = Worker(
        Database(url),
        clock=lambda: now,
        gateways=Gateways({}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
        handlers={**HANDLERS, "BookingConfirmed": stall},
    )
    await worker.run_once()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])))
