"""The signed-in user's notifications: a page at a time, how many are unread, marking read."""

from functools import partial

import strawberry

from resolvers.node import node_id
from resolvers.permissions import IsAuthenticated, require_user
from schema.context import Info
from schema.notifications import NotificationConnection, NotificationEdge, NotificationType
from services import notifications as notifications_service
from services.errors import InvalidInput


async def notifications(
    info: Info, unread_only: bool | None = False, first: int | None = 20, after: str | None = None
) -> NotificationConnection:
    user = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await notifications_service.list_notifications(
            session,
            user_id=user.id,
            unread_only=bool(unread_only),
            first=20 if first is None else first,
            after=after,
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return NotificationConnection.of(
        [
            NotificationEdge(cursor_value=cursor, node=NotificationType.from_row(row))
            for row, cursor in zip(page.notifications, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def unread_notification_count(info: Info) -> int:
    user = await require_user(info)
    async with info.context.database.read_session() as session:
        return await notifications_service.unread_count(session, user_id=user.id)


async def mark_notifications_read(info: Info, ids: list[strawberry.ID] | None = None) -> int:
    user = await require_user(info)
    numbers: list[int] | None = None
    if ids is not None:
        if len(ids) > notifications_service.MAX_MARK_IDS:
            raise InvalidInput.field("ids", f"at most {notifications_service.MAX_MARK_IDS}")
        numbers = [node_id(value, "Notification", "ids") for value in ids]
    return await info.context.database.transaction(
        partial(
            notifications_service.mark_read,
            user_id=user.id,
            ids=numbers,
            now=info.context.services.clock(),
        )
    )


@strawberry.type
class NotificationQueries:
    notifications: NotificationConnection = strawberry.field(
        resolver=notifications,
        permission_classes=[IsAuthenticated],
        description="The signed-in user's notifications, newest first; only the unread ones "
        "with unreadOnly. first: 1 to 100.",
    )
    unread_notification_count: int = strawberry.field(
        resolver=unread_notification_count,
        permission_classes=[IsAuthenticated],
        description="How many of the signed-in user's notifications are unread.",
    )


@strawberry.type
class NotificationMutations:
    mark_notifications_read: int = strawberry.mutation(
        resolver=mark_notifications_read,
        permission_classes=[IsAuthenticated],
        description="Marks the signed-in user's notifications read: those of ids (at most 100; "
        "anyone else's are ignored), or all of them when ids is left out. Answers how many "
        "changed.",
    )
