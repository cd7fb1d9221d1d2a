"""The amenity catalogue: it changes only with a migration, so each process reads it once."""

from sqlalchemy import select

from db.database import Database
from db.models import Amenity
from db.rows import AmenityRow


class AmenityCatalogue:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._by_id: dict[int, AmenityRow] | None = None

    async def by_id(self) -> dict[int, AmenityRow]:
        if self._by_id is None:
            async with self._database.read_session() as session:
                rows = await session.execute(
                    select(Amenity.id, Amenity.code, Amenity.name, Amenity.category).order_by(
                        Amenity.category, Amenity.name
                    )
                )
                self._by_id = {row.id: AmenityRow._make(row) for row in rows}
        return self._by_id

    async def ids_by_code(self) -> dict[str, int]:
        return {entry.code: entry.id for entry in (await self.by_id()).values()}
