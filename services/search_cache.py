"""Which generation of search results is current: raised by every change they depend on."""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.models import SearchGeneration
from db.raw import fetch


async def results_changed(session: AsyncSession) -> None:
    """Call in the transaction of a change to listings, their calendars or bookings."""
    await session.execute(
        update(SearchGeneration)
        .where(SearchGeneration.id == 1)
        .values(value=SearchGeneration.value + 1)
    )


async def current_generation(database: Database) -> int | None:
    rows = await fetch(database, "SELECT value FROM search_generation")
    return rows[0]["value"] if rows else None
