"""Messages between a guest and a host (their threads: schema/message_threads.py)."""

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay

from db.rows import MessageRow
from resolvers.permissions import current_user
from schema.accounts import UserType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from services import messages as messages_service

if TYPE_CHECKING:
    from schema.message_threads import MessageThreadType


@strawberry.type(name="Message", description="One message of a thread: plain text, never markup.")
class MessageType(relay.Node):
    message_id: relay.NodeID[int]
    body: str
    created_at: datetime
    _row: strawberry.Private[MessageRow]

    @strawberry.field(description="The thread it belongs to.")
    async def thread(
        self, info: Info
    ) -> Annotated["MessageThreadType", strawberry.lazy("schema.message_threads")]:
        from schema.message_threads import MessageThreadType

        row = await info.context.loaders.thread_by_id.load_existing(self._row.thread_id)
        return MessageThreadType.from_row(row)

    @strawberry.field(description="Who wrote it.")
    async def sender(self, info: Info) -> UserType:
        return UserType.from_row(
            await info.context.loaders.user_by_id.load_existing(self._row.sender_id)
        )

    @classmethod
    def from_row(cls, row: MessageRow) -> Self:
        return cls(message_id=row.id, body=row.body, created_at=row.created_at, _row=row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # another's message is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.message_by_id.load_many([int(i) for i in node_ids])
        threads = await info.context.loaders.thread_by_id.load_many(
            [row.thread_id for row in rows if row is not None]
        )
        visible = {
            thread.id
            for thread in threads
            if thread is not None and messages_service.can_see(await current_user(info), thread)
        }
        return [
            cls.from_row(row) if row is not None and row.thread_id in visible else None
            for row in rows
        ]


@strawberry.type(description="A message in a list, with the cursor to continue after it.")
class MessageEdge(Edge[MessageType]):
    pass


@strawberry.type(description="A page of a thread's messages, newest first.")
class MessageConnection(Connection[MessageEdge]):
    total_count: int = total_count("How many messages the thread holds.")


@strawberry.input(
    description="A message, and where it goes: exactly one of threadId, listingId (a guest "
    "writing to the listing's host) and bookingId (its guest or its host)."
)
class SendMessageInput:
    thread_id: strawberry.ID | None = strawberry.UNSET
    listing_id: strawberry.ID | None = strawberry.UNSET
    booking_id: strawberry.ID | None = strawberry.UNSET
    body: str = strawberry.field(description="Plain text, 1 to 5000 characters.")
