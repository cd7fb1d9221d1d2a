"""Messages: send, read a thread, list the viewer's threads and a thread's messages."""

from dataclasses import replace
from functools import partial

import strawberry

from db.rows import MessageRow, MessageThreadRow
from resolvers.node import node_id
from resolvers.permissions import IsAuthenticated, require_user
from schema.context import Info
from schema.message_threads import MessageThreadConnection, MessageThreadEdge, MessageThreadType
from schema.messages import MessageConnection, MessageEdge, MessageType, SendMessageInput
from services import messages as messages_service


def _id(value: strawberry.ID | None, type_name: str, field: str) -> int | None:
    # Left out and null alike mean "not this way".
    if value is None or value is strawberry.UNSET:
        return None
    return node_id(value, type_name, field)


async def send_message(info: Info, input: SendMessageInput) -> MessageType:
    sender = await require_user(info)
    services = info.context.services
    # Trying counts, refused or not: a burst of messages is abuse, not conversation.
    limits = replace(services.attempt_limits, per_account=services.messages_per_minute)
    await limits.count("message_send", ip=None, user_id=sender.id)
    target = messages_service.Target(
        thread_id=_id(input.thread_id, "MessageThread", "threadId"),
        listing_id=_id(input.listing_id, "Listing", "listingId"),
        booking_id=_id(input.booking_id, "Booking", "bookingId"),
    )
    message = await info.context.database.transaction(
        partial(
            messages_service.send_message,
            sender=sender,
            target=target,
            body=input.body,
            now=services.clock(),
            mail_delay=services.message_email_delay,
        )
    )
    return MessageType.from_row(MessageRow.of(message))


async def mark_thread_read(info: Info, thread_id: strawberry.ID) -> MessageThreadType:
    thread = await info.context.database.transaction(
        partial(
            messages_service.mark_read,
            reader=await require_user(info),
            thread_id=node_id(thread_id, "MessageThread", "threadId"),
            now=info.context.services.clock(),
        )
    )
    return MessageThreadType.from_row(MessageThreadRow.of(thread))


async def message_threads(
    info: Info, first: int = 20, after: str | None = None
) -> MessageThreadConnection:
    viewer = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await messages_service.list_threads(session, viewer=viewer, first=first, after=after)
    # The rows are in hand: a thread asked for by id later in the request is not read again.
    for row in page.rows:
        info.context.loaders.thread_by_id.prime(row.id, row)

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return MessageThreadConnection.of(
        [
            MessageThreadEdge(cursor_value=cursor, node=MessageThreadType.from_row(row))
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def messages_page(
    info: Info, thread_id: int, *, first: int, after: str | None
) -> MessageConnection:
    """A thread's messages; the thread reached the viewer, so they take part in it."""
    database = info.context.database
    async with database.read_session() as session:
        page = await messages_service.list_messages(
            session, thread_id=thread_id, first=first, after=after
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return MessageConnection.of(
        [
            MessageEdge(cursor_value=cursor, node=MessageType.from_row(row))
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


@strawberry.type
class MessageQueries:
    message_threads: MessageThreadConnection = strawberry.field(
        resolver=message_threads,
        permission_classes=[IsAuthenticated],
        description="The viewer's conversations, as guest and as host, newest activity first; "
        "`first` from 1 to 100.",
    )


@strawberry.type
class MessageMutations:
    send_message: MessageType = strawberry.mutation(
        resolver=send_message,
        permission_classes=[IsAuthenticated],
        description="Writes to a thread (its participants), to a listing's host (a guest; the "
        "thread is made on the first message) or about a booking (its guest or its host).",
    )
    mark_thread_read: MessageThreadType = strawberry.mutation(
        resolver=mark_thread_read,
        permission_classes=[IsAuthenticated],
        description="The viewer has read the thread: its unreadCount for them goes to 0.",
    )
