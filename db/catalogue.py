"""The amenity catalogue: it changes only with a migration, so each process reads it once."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.models import Amenity
from db.rows import AmenityRow


async def read_amenities(session: AsyncSession) -> dict[int, AmenityRow]:
    """Every amenity by id, in the order they are shown: by category, then name."""
    rows = await session.execute(
        select(Amenity.id, Amenity.code, Amenity.name, Amenity.category).order_by(
            Amenity.category, Amenity.name
        )
    )
    return {row.id: AmenityRow._make(row) for row in rows}


def ids_by_code(amenities: dict[int, AmenityRow]) -> dict[str, int]:
    """The map from the codes clients send ("wifi") to the ids listings store."""
    return {entry.code: entry.id for entry in amenities.values()}


async def amenity_ids_by_code(session: AsyncSession) -> dict[str, int]:
    return ids_by_code(await read_amenities(session))


class AmenityCatalogue:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._by_id: dict[int, AmenityRow] | None = None

    @property
    def loaded(self) -> dict[int, AmenityRow] | None:
        """The catalogue once read (it does not change while Roost runs), else None."""
        return self._by_id

    async def by_id(self) -> dict[int, AmenityRow]:
        if self._by_id is None:
            async with self._database.read_session() as session:
                self._by_id = await read_amenities(session)
        return self._by_id

    async def ids_by_code(self) -> dict[str, int]:
        return ids_by_code(await self.by_id())
