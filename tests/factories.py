"""Small factories for test data."""

from itertools import count

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User

_serial = count(1)


async def make_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    first_name: str = "Ana",
    last_name: str = "Silva",
    roles: list[str] | None = None,
) -> User:
    user = User(
        email=email or f"user{next(_serial)}@example.com",
        first_name=first_name,
        last_name=last_name,
        roles=roles or ["GUEST"],
    )
    session.add(user)
    await session.flush()
    return user
