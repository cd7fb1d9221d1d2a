"""Demo data: a small, realistic Roost to click through. Later issues grow it."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Boolean, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth.passwords import PasswordHasher
from db.database import Database
from db.models import Listing, User
from db.states import UserStatus
from gateways.payments import TestPaymentGateway
from services import bookings, checkout, listings, moderation
from services.payments import Gateways

DEMO_USERS = [
    {
        "email": "maria.gonzalez@example.com",
        "first_name": "María",
        "last_name": "González",
        "bio": "Architect in Barcelona; I host two flats near the Sagrada Família.",
        "roles": ["GUEST", "HOST"],
    },
    {
        "email": "kenji.tanaka@example.com",
        "first_name": "Kenji",
        "last_name": "Tanaka",
        "bio": "I run a restored machiya townhouse in Kyoto's Higashiyama ward.",
        "roles": ["GUEST", "HOST"],
    },
    {
        "email": "amara.okafor@example.com",
        "first_name": "Amara",
        "last_name": "Okafor",
        "bio": "Lagos born, Cape Town based. Sea-view cottage in Camps Bay.",
        "roles": ["GUEST", "HOST"],
    },
    {
        "email": "liam.obrien@example.com",
        "first_name": "Liam",
        "last_name": "O'Brien",
        "bio": "Software engineer from Dublin who works from a different city every month.",
        "roles": ["GUEST"],
    },
    {
        "email": "sofia.rossi@example.com",
        "first_name": "Sofia",
        "last_name": "Rossi",
        "bio": "Travelling with two kids and a dog; always looking for a garden.",
        "roles": ["GUEST"],
    },
    {
        "email": "priya.raman@example.com",
        "first_name": "Priya",
        "last_name": "Raman",
        "bio": "Trust and safety at Roost.",
        "roles": ["GUEST", "ADMIN"],
    },
]


# Every demo account signs in with this password; `roost serve` prints it in development.
DEMO_PASSWORD = "roost-demo-2026"  # noqa: S105
DEMO_ACCOUNTS = {
    "guest": "liam.obrien@example.com",
    "host": "maria.gonzalez@example.com",
    "admin": "priya.raman@example.com",
}


# By host: what the bios above promise.
DEMO_LISTINGS: dict[str, list[dict[str, Any]]] = {
    "maria.gonzalez@example.com": [
        {
            "title": "Bright flat by the Sagrada Família",
            "description": "Two bedrooms, a balcony over the street and morning light.",
            "property_type": "ENTIRE_PLACE",
            "address": {"city": "Barcelona", "region": "Catalonia", "country": "ES"},
            "latitude": 41.4036, "longitude": 2.1744, "time_zone": "Europe/Madrid",
            "max_guests": 4, "bedrooms": 2, "beds": 3, "bathrooms": 1.0,
            "nightly_price": {"amount": Decimal("120"), "currency": "EUR"},
            "cleaning_fee": {"amount": Decimal("40"), "currency": "EUR"},
            "amenities": ["wifi", "kitchen", "washer", "air_conditioning", "workspace"],
            "cancellation_policy": "MODERATE",
        },
        {
            "title": "Studio with a roof terrace in Gràcia",
            "description": "A quiet studio for two, with a shared terrace over the rooftops.",
            "property_type": "ENTIRE_PLACE",
            "address": {"city": "Barcelona", "region": "Catalonia", "country": "ES"},
            "latitude": 41.4025, "longitude": 2.1564, "time_zone": "Europe/Madrid",
            "max_guests": 2, "bedrooms": 1, "beds": 1, "bathrooms": 1.0,
            "nightly_price": {"amount": Decimal("85"), "currency": "EUR"},
            "amenities": ["wifi", "kitchen", "heating"],
            "cancellation_policy": "FLEXIBLE",
            "min_nights": 2,
        },
    ],
    "kenji.tanaka@example.com": [
        {
            "title": "Restored machiya in Higashiyama",
            "description": "A wooden townhouse from 1920 with a small garden and a cedar bath.",
            "property_type": "ENTIRE_PLACE",
            "address": {"city": "Kyoto", "region": "Kyoto", "country": "JP"},
            "latitude": 34.9986, "longitude": 135.7809, "time_zone": "Asia/Tokyo",
            "max_guests": 5, "bedrooms": 2, "beds": 4, "bathrooms": 1.5,
            "nightly_price": {"amount": Decimal("28000"), "currency": "JPY"},
            "cleaning_fee": {"amount": Decimal("6000"), "currency": "JPY"},
            "amenities": ["wifi", "kitchen", "heating", "self_check_in"],
            "cancellation_policy": "FIRM",
        },
    ],
    "amara.okafor@example.com": [
        {
            "title": "Sea-view cottage in Camps Bay",
            "description": "Steps from the beach, with a view of the Twelve Apostles.",
            "property_type": "ENTIRE_PLACE",
            "address": {"city": "Cape Town", "region": "Western Cape", "country": "ZA"},
            "latitude": -33.9508, "longitude": 18.3776, "time_zone": "Africa/Johannesburg",
            "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 2.0,
            "nightly_price": {"amount": Decimal("2400"), "currency": "ZAR"},
            "amenities": ["wifi", "kitchen", "pool", "beach_access", "free_parking"],
            "instant_book": False,
            "cancellation_policy": "STRICT",
        },
    ],
}  # fmt: skip


@dataclass(frozen=True)
class SeedReport:
    users_added: int
    sample_user_id: int | None
    listings_added: int = 0


async def is_empty(database: Database) -> bool:
    async with database.read_session() as session:
        return not await session.scalar(select(exists().select_from(User)))


async def demo_accounts_exist(database: Database) -> bool:
    async with database.read_session() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.email.in_(DEMO_ACCOUNTS.values()),
                User.password_hash.is_not(None),
                User.status == UserStatus.ACTIVE,
            )
        )
    return found == len(DEMO_ACCOUNTS)


async def seed_demo_data(
    database: Database, passwords: PasswordHasher, *, moderation_on: bool = False
) -> SeedReport:
    """Adds what is missing of the demo data; running it twice adds nothing the second time.
    With ``moderation_on``, the last new listing waits for an admin's review."""
    password_hash = await passwords.hash(DEMO_PASSWORD)  # one hash will do for demo accounts
    rows = [
        {**user, "password_hash": password_hash, "email_verified_at": func.now()}
        for user in DEMO_USERS
    ]

    async def work(session: AsyncSession) -> tuple[SeedReport, tuple[User, int] | None]:
        inserted = insert(User).values(rows)
        outcome = await session.execute(
            inserted.on_conflict_do_update(
                index_elements=[func.lower(User.email)],
                # A demo account seeded before it had a password gets one; nothing else changes.
                set_={"password_hash": func.coalesce(User.password_hash, password_hash)},
            ).returning(literal_column("xmax = 0", Boolean))  # PostgreSQL: true for a fresh insert
        )
        users_added = sum(1 for (was_inserted,) in outcome if was_inserted)
        sample_user_id = await session.scalar(
            select(User.id).where(User.email == DEMO_USERS[0]["email"])
        )
        listings_added, trip = await _seed_listings_and_a_trip(session, moderation_on)
        return SeedReport(
            users_added=users_added, sample_user_id=sample_user_id, listings_added=listings_added
        ), trip

    report, trip = await database.transaction(work)
    if trip is not None:
        await _pay_for(database, *trip)
    return report


async def _seed_listings_and_a_trip(
    session: AsyncSession, moderation_on: bool
) -> tuple[int, tuple[User, int] | None]:
    """The hosts' listings, unless they have some already, and a trip for Liam to pay."""
    users = {user.email: user for user in await session.scalars(select(User))}
    created: list[Listing] = []
    for email, fields in DEMO_LISTINGS.items():
        host = users.get(email)
        if host is None or await session.scalar(select(exists().where(Listing.host_id == host.id))):
            continue
        for listing in fields:
            created.append(await listings.create_listing(session, host=host, fields=listing))
    if moderation_on and len(created) > 1:  # the first keeps Liam's trip
        moderation.send_for_review(created[-1], now=datetime.now(UTC))
        await session.flush()
    guest = users.get(DEMO_ACCOUNTS["guest"])
    if created and guest is not None:
        # Through the same steps a guest takes: book, then pay (TEST), confirmed.
        now = datetime.now(UTC)
        check_in = now.date() + timedelta(days=30)
        trip = await bookings.create_booking(
            session,
            guest=guest,
            listing_id=created[0].id,
            stay=bookings.Stay(check_in, check_in + timedelta(days=4), guests=2),
            message="Hello! Working from Barcelona for a few days.",
            rules=bookings.BookingRules(),
            now=now,
        )
        return len(created), (guest, trip.id)
    return len(created), None


async def _pay_for(database: Database, guest: User, booking_id: int) -> None:
    """As the guest's requests would: each step in its own transaction, the provider between."""
    gateways = Gateways({"TEST": TestPaymentGateway()})
    now = datetime.now(UTC)
    opening = await database.transaction(
        partial(
            checkout.start_payment,
            actor=guest,
            booking_id=booking_id,
            provider="TEST",
            display_currency=guest.currency,
            gateways=gateways,
            now=now,
        )
    )
    started = await checkout.create_with_provider(database.transaction, gateways, opening)
    capture = await database.transaction(
        partial(
            checkout.confirm_test_payment,
            actor=guest,
            payment_id=started.payment_id,
            succeed=True,
            now=now,
            rules=bookings.BookingRules(),
        )
    )
    await checkout.settle(database.transaction, gateways, capture, clock=lambda: now)
