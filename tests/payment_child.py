"""A Roost process for the crash test: it confirms a TEST payment as the confirmTestPayment
resolver does (the intent in one transaction, then ``checkout.settle``), and its provider
kills the process right after answering the capture, before our second transaction. Only the
services are loaded, not the app, so the child starts quickly.

    python -m tests.payment_child DATABASE_URL NOW_ISO GUEST_ID PAYMENT_ID
"""

import asyncio
import sys
from datetime import datetime
from functools import partial

from db.database import Database
from db.models import User
from services import checkout
from services.bookings import BookingRules
from services.payments import Gateways
from tests.fakes.payment_provider import LedgerProvider


async def main(url: str, now: datetime, guest_id: int, payment_id: int) -> None:
    database = Database(url)
    async with database.read_session() as session:
        guest = await session.get(User, guest_id)
    call = await database.transaction(
        partial(
            checkout.confirm_test_payment,
            actor=guest,
            payment_id=payment_id,
            succeed=True,
            now=now,
            rules=BookingRules(),
        )
    )
    gateways = Gateways({"TEST": LedgerProvider(url, die_after_answer=True)})
    await checkout.settle(database.transaction, gateways, call, clock=lambda: now)
    raise SystemExit("the provider answered and the process lived on")


if __name__ == "__main__":
    url, now, guest_id, payment_id = sys.argv[1:5]
    asyncio.run(main(url, datetime.fromisoformat(now), int(guest_id), int(payment_id)))
