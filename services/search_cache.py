"""Which generation of search results is current: raised by every change they depend on."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db.models import SearchGeneration


async def results_changed(session: AsyncSession) -> None:
    """Call in the transaction of a change to listings, their calendars or bookings."""
    await session.execute(
        update(SearchGeneration)
        .where(SearchGeneration.id == 1)
        .values(value=SearchGeneration.value + 1)
    )


async def current_generation(connection: AsyncConnection) -> int | None:
    return (await connection.execute(select(SearchGeneration.value))).scalar_one_or_none()
