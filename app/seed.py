"""Demo data: a small, realistic Roost to click through. Later issues grow it."""

from dataclasses import dataclass

from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert

from auth.passwords import PasswordHasher
from db.database import Database
from db.models import User

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


@dataclass(frozen=True)
class SeedReport:
    users_added: int
    sample_user_id: int | None


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
                User.status == "active",
            )
        )
    return found == len(DEMO_ACCOUNTS)


async def seed_demo_data(database: Database, passwords: PasswordHasher) -> SeedReport:
    """Adds what is missing of the demo data; running it twice adds nothing the second time."""
    password_hash = await passwords.hash(DEMO_PASSWORD)  # one hash will do for demo accounts
    rows = [
        {**user, "password_hash": password_hash, "email_verified_at": func.now()}
        for user in DEMO_USERS
    ]
    async with database.unit_of_work() as session:
        inserted = insert(User).values(rows)
        outcome = await session.execute(
            inserted.on_conflict_do_update(
                index_elements=[func.lower(User.email)],
                # A demo account seeded before it had a password gets one; nothing else changes.
                set_={"password_hash": func.coalesce(User.password_hash, password_hash)},
            ).returning(literal_column("xmax = 0"))  # PostgreSQL: true for a fresh insert
        )
        users_added = sum(1 for (was_inserted,) in outcome if was_inserted)
        sample_user_id = await session.scalar(
            select(User.id).where(User.email == DEMO_USERS[0]["email"])
        )
    return SeedReport(users_added=users_added, sample_user_id=sample_user_id)
