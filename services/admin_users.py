"""What admins do to accounts besides suspending them (services/accounts.set_status): find
them, give and take roles, and make one reset its password. Every change is audited.

The rules. Every account keeps GUEST. An admin never takes the last active admin's ADMIN role
(nobody could undo it). A forced reset ends every session of the account at once, voids its
password (signing in with it fails from then on) and mails a reset link: only the address's
owner gets back in.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.states import Role, UserStatus
from services import audit, cursors, events, sessions
from services.accounts import ROLE_ORDER, keep_an_active_admin
from services.errors import Conflict, InvalidInput, NotFound

MAX_PAGE_SIZE = 100
MAX_SEARCH = 100


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


def search_pattern(text: str) -> str:
    """An admin's search words as an ILIKE pattern that finds them anywhere in a column,
    LIKE's wildcards taken literally; BAD_USER_INPUT when they are empty or too long."""
    text = text.strip()
    if not 1 <= len(text) <= MAX_SEARCH:
        raise InvalidInput.field("search", f"must be 1 to {MAX_SEARCH} characters")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(
    session: AsyncSession,
    *,
    text: str | None,
    role: Role | None,
    status: UserStatus | None,
    first: int,
    after: str | None,
) -> UserPage:
    """Accounts whose email or name holds ``text`` (any case), newest first."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = []
    if text is not None:
        pattern = search_pattern(text)
        conditions.append(
            or_(
                User.email.ilike(pattern),
                (User.first_name + " " + User.last_name).ilike(pattern),
            )
        )
    if role is not None:
        conditions.append(User.roles.any_() == role)
    if status is not None:
        conditions.append(User.status == status)
    query = select(User).where(*conditions)
    key = (User.created_at, User.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    users = list(await session.scalars(query.order_by(*(c.desc() for c in key)).limit(first + 1)))
    page = users[:first]
    return UserPage(
        page,
        [cursors.pack_moment(user.created_at, user.id) for user in page],
        len(users) > first,
        select(func.count()).select_from(User).where(*conditions),
    )


async def account(session: AsyncSession, user_id: int) -> User:
    """One account, whatever its status, as an admin looks it up."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def emails(session: AsyncSession, user_ids: list[int]) -> dict[int, str]:
    """The addresses of these accounts, to name who did what."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(set(user_ids))))
    return {row.id: row.email for row in rows}


async def _locked_user(session: AsyncSession, user_id: int) -> User:
    user = await session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update(of=User)
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound("No such user.")
    return user


async def set_role(
    session: AsyncSession, *, actor_id: int, user_id: int, role: Role, held: bool, now: datetime
) -> User:
    """Gives (``held``) or takes ``role``; a no-op change is still recorded as asked."""
    if role == Role.GUEST:
        raise InvalidInput.field("role", "every account is a GUEST: give or take HOST or ADMIN")
    if role == Role.ADMIN and not held:
        await keep_an_active_admin(session, actor_id=actor_id, losing=user_id)
    user = await _locked_user(session, user_id)
    before = list(user.roles)
    user.roles = [r for r in ROLE_ORDER if (r in before and r != role) or (held and r == role)]
    await session.flush()
    await audit.record(
        session,
        actor_id=actor_id,
        action="user.grant_role" if held else "user.remove_role",
        subject=("User", user.id),
        before={"roles": sorted(before)},
        after={"roles": sorted(user.roles)},
        now=now,
    )
    return user


async def force_password_reset(
    session: AsyncSession, *, actor_id: int, user_id: int, now: datetime
) -> User:
    user = await _locked_user(session, user_id)
    if user.status != UserStatus.ACTIVE:
        raise Conflict("This account is suspended: reinstate it first, then reset its password.")
    had_password = user.password_hash is not None
    user.password_hash = None
    await session.flush()
    await sessions.end_all(session, user_id=user.id)
    events.emit(session, events.PasswordResetRequested(user.email), now=now)
    await audit.record(
        session,
        actor_id=actor_id,
        action="user.force_password_reset",
        subject=("User", user.id),
        before={"password": had_password},
        after={"password": False},
        now=now,
    )
    return user
