"""In-app notifications: what the signed-in user is told of their bookings, payments, payouts
and reviews."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from db import states
from db.rows import NotificationRow
from resolvers.permissions import can_see_booking, current_user
from schema.bookings import BookingType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from services import notifications as notifications_service

NotificationKind = states.NotificationKind
strawberry.enum(NotificationKind, description="What a notification tells of.")


@strawberry.type(
    name="Notification",
    description="Something the signed-in user is told of in the app; only its recipient sees it.",
)
class NotificationType(relay.Node):
    notification_id: relay.NodeID[int]
    kind: NotificationKind
    title: str = strawberry.field(description="One line, plain text.")
    body: str = strawberry.field(description="A sentence or two, plain text.")
    read: bool = strawberry.field(description="Whether markNotificationsRead marked it read.")
    created_at: datetime
    _row: strawberry.Private[NotificationRow]

    @strawberry.field(description="The booking it is about; null when it is about none.")
    async def booking(self, info: Info) -> BookingType | None:
        if self._row.booking_id is None:
            return None
        row = await info.context.loaders.booking_by_id.load(self._row.booking_id)
        return BookingType.from_row(row) if row and await can_see_booking(info, row) else None

    @classmethod
    def from_row(cls, row: NotificationRow) -> Self:
        return cls(
            notification_id=row.id,
            kind=NotificationKind(row.kind),
            title=row.title,
            body=row.body,
            read=row.read_at is not None,
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # another's node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [int(node_id) for node_id in node_ids]
        viewer = await current_user(info)
        if viewer is None:
            return [None for _ in ids]
        async with info.context.database.read_session() as session:
            rows = await notifications_service.of_user(session, user_id=viewer.id, ids=ids)
        return [cls.from_row(rows[i]) if i in rows else None for i in ids]


@strawberry.type(description="A notification in a list, with the cursor to continue after it.")
class NotificationEdge(Edge[NotificationType]):
    pass


@strawberry.type(description="A page of the signed-in user's notifications, newest first.")
class NotificationConnection(Connection[NotificationEdge]):
    total_count: int = total_count("How many notifications the list holds in all.")
