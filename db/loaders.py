"""Per-request dataloaders: batched reads, answered in key order."""

from collections.abc import Sequence

from aiodataloader import DataLoader
from sqlalchemy import select

from db.database import Database
from db.models import User


class UserByIdLoader(DataLoader[int, User | None]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, ids: Sequence[int]) -> list[User | None]:
        async with self.database.read_session() as session:
            users = await session.scalars(select(User).where(User.id.in_(ids)))
            by_id = {user.id: user for user in users}
        return [by_id.get(user_id) for user_id in ids]


class Loaders:
    """One set per request, so nothing cached leaks from one viewer to another."""

    def __init__(self, database: Database) -> None:
        self.user_by_id = UserByIdLoader(database)
