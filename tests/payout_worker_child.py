"""A worker process for the payout crash test: one pass at a given time, paying hosts through
Stripe at the given base URL (the test's fake), as `roost worker` would.

    python -m tests.payout_worker_child DATABASE_URL NOW_ISO STRIPE_API_BASE
"""

import asyncio
import sys
from datetime import datetime

from app.worker import Worker
from db.database import Database
from gateways.email import ConsoleMailer
from gateways.stripe import StripeGateway
from services.payments import Gateways
from tests.fakes.stripe_api import SECRET_KEY


async def main(url: str, now: datetime, stripe_base: str) -> None:
    stripe = StripeGateway(
        api_key=SECRET_KEY, api_base=stripe_base, timeout_seconds=60, max_network_retries=0
    )
    database = Database(url)
    worker = Worker(
        database,
        clock=lambda: now,
        gateways=Gateways({"STRIPE": stripe}),
        mailer=ConsoleMailer(),
        frontend_url="http://frontend.test",
    )
    try:
        await worker.run_once()
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3]))
