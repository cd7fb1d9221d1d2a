"""Demo data: a small, realistic Roost to click through. Later issues grow it."""

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert

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


@dataclass(frozen=True)
class SeedReport:
    users_added: int
    sample_user_id: int | None


async def is_empty(database: Database) -> bool:
    async with database.read_session() as session:
        return not await session.scalar(select(exists().select_from(User)))


async def seed_demo_data(database: Database) -> SeedReport:
    """Adds what is missing of the demo data; running it twice adds nothing the second time."""
    async with database.unit_of_work() as session:
        added = await session.scalars(
            insert(User).values(DEMO_USERS).on_conflict_do_nothing().returning(User.id)
        )
        users_added = len(added.all())
        sample_user_id = await session.scalar(
            select(User.id).where(User.email == DEMO_USERS[0]["email"])
        )
    return SeedReport(users_added=users_added, sample_user_id=sample_user_id)
