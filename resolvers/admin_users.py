"""Admins find accounts, give and take roles, and force a password reset (suspending is in
resolvers/accounts.py)."""

from functools import partial

import strawberry

from db.rows import UserRow
from resolvers.node import node_id
from resolvers.permissions import IsAdmin, require_user
from schema.accounts import Role, UserConnection, UserEdge, UserStatus, UserType
from schema.context import Info
from services import admin_users


async def users(
    info: Info,
    search: str | None = None,
    role: Role | None = None,
    status: UserStatus | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> UserConnection:
    database = info.context.database
    async with database.read_session() as session:
        page = await admin_users.search(
            session,
            text=search,
            role=role,
            status=status,
            first=20 if first is None else first,
            after=after,
        )
        rows = [UserRow.of(user) for user in page.users]

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return UserConnection.of(
        [
            UserEdge(cursor_value=cursor, node=UserType.from_row(row))
            for row, cursor in zip(rows, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def _set_role(info: Info, user_id: strawberry.ID, role: Role, *, held: bool) -> UserType:
    admin = await require_user(info)
    user = await info.context.database.transaction(
        partial(
            admin_users.set_role,
            actor_id=admin.id,
            user_id=node_id(user_id, "User", "userId"),
            role=role,
            held=held,
            now=info.context.services.clock(),
        )
    )
    return UserType.from_row(UserRow.of(user))


async def grant_role(info: Info, user_id: strawberry.ID, role: Role) -> UserType:
    return await _set_role(info, user_id, role, held=True)


async def remove_role(info: Info, user_id: strawberry.ID, role: Role) -> UserType:
    return await _set_role(info, user_id, role, held=False)


async def force_password_reset(info: Info, user_id: strawberry.ID) -> UserType:
    admin = await require_user(info)
    user = await info.context.database.transaction(
        partial(
            admin_users.force_password_reset,
            actor_id=admin.id,
            user_id=node_id(user_id, "User", "userId"),
            now=info.context.services.clock(),
        )
    )
    await info.context.services.revoked_sessions.settle()
    return UserType.from_row(UserRow.of(user))


@strawberry.type
class AdminUserQueries:
    users: UserConnection = strawberry.field(
        resolver=users,
        permission_classes=[IsAdmin],
        description="Accounts, newest first (admins only): those whose email or name holds "
        "search (any case), of a role, in a status. first: 1 to 100.",
    )


@strawberry.type
class AdminUserMutations:
    grant_role: UserType = strawberry.mutation(
        resolver=grant_role,
        permission_classes=[IsAdmin],
        description="Gives an account HOST or ADMIN (admins only; audited).",
    )
    remove_role: UserType = strawberry.mutation(
        resolver=remove_role,
        permission_classes=[IsAdmin],
        description="Takes HOST or ADMIN from an account (admins only; audited); never the "
        "last active admin's ADMIN.",
    )
    force_password_reset: UserType = strawberry.mutation(
        resolver=force_password_reset,
        permission_classes=[IsAdmin],
        description="Signs the account out everywhere, voids its password and mails it a reset "
        "link (admins only; audited).",
    )
