"""Conversations between a guest and a host about a listing."""

from collections.abc import Iterable
from typing import Self

import strawberry
from strawberry import relay

from db.rows import MessageThreadRow
from resolvers.permissions import can_see_booking, can_see_listing, current_user
from schema.accounts import UserType
from schema.bookings import BookingType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import ListingType
from schema.messages import MessageConnection, MessageType
from services import messages as messages_service


@strawberry.type(
    name="MessageThread",
    description="The conversation of a guest and a host about one listing (one per guest, host "
    "and listing). Only its two participants see it.",
)
class MessageThreadType(relay.Node):
    thread_id: relay.NodeID[int]
    _row: strawberry.Private[MessageThreadRow]

    @strawberry.field(
        description="The listing written about; null when the viewer may no longer see it "
        "(unlisted, suspended or deleted since)."
    )
    async def listing(self, info: Info) -> ListingType | None:
        row = await info.context.loaders.listing_by_id.load_existing(self._row.listing_id)
        return ListingType.from_row(row) if await can_see_listing(info, row) else None

    @strawberry.field(description="The booking last written about, if any.")
    async def booking(self, info: Info) -> BookingType | None:
        if self._row.booking_id is None:
            return None
        row = await info.context.loaders.booking_by_id.load_existing(self._row.booking_id)
        return BookingType.from_row(row) if await can_see_booking(info, row) else None

    @strawberry.field(description="The guest, then the host.")
    async def participants(self, info: Info) -> list[UserType]:
        users = info.context.loaders.user_by_id
        return [
            UserType.from_row(await users.load_existing(user_id))
            for user_id in (self._row.guest_id, self._row.host_id)
        ]

    @strawberry.field(description="The newest message.")
    async def last_message(self, info: Info) -> MessageType | None:
        row = await info.context.loaders.last_message_by_thread.load(self._row.id)
        return MessageType.from_row(row) if row is not None else None

    @strawberry.field(description="How many messages to the viewer arrived since they last read.")
    async def unread_count(self, info: Info) -> int:
        return messages_service.unread_for(await current_user(info), self._row)

    @strawberry.field(description="The messages, newest first; `first` from 1 to 100.")
    async def messages(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> MessageConnection:
        # Imported here: the resolvers build this module's types, so they import it first.
        from resolvers.messages import messages_page

        return await messages_page(info, self._row.id, first=first, after=after)

    @classmethod
    def from_row(cls, row: MessageThreadRow) -> Self:
        return cls(thread_id=row.id, _row=row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # another's thread is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.thread_by_id.load_many([int(i) for i in node_ids])
        viewer = await current_user(info)
        return [
            cls.from_row(row) if row is not None and messages_service.can_see(viewer, row) else None
            for row in rows
        ]


@strawberry.type(description="A thread in a list, with the cursor to continue after it.")
class MessageThreadEdge(Edge[MessageThreadType]):
    pass


@strawberry.type(description="A page of the viewer's threads, newest activity first.")
class MessageThreadConnection(Connection[MessageThreadEdge]):
    total_count: int = total_count("How many threads the viewer takes part in.")
