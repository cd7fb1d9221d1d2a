"""Live news over the websocket (graphql-transport-ws): the signed-in user's notifications, the
changes of a booking they take part in, and the messages of their threads.

Who may listen is decided as a subscription starts: only to one's own notifications and
messages, and to a booking its guest, its host or an admin may see (anyone else is told it does
not exist, as ``node`` would). What is heard afterwards comes from the channels of
services/live.py; each event is answered with the connection's loaders emptied, so a long-lived
connection never shows what it read an hour ago.
"""

from collections.abc import AsyncGenerator

import strawberry
from aiodataloader import DataLoader

from resolvers.node import node_id
from resolvers.permissions import IsAuthenticated, can_see_booking, require_user
from schema.bookings import BookingType
from schema.context import Info
from schema.live_events import shared_payload
from schema.messages import MessageType
from schema.notifications import NotificationType
from services import live
from services import messages as messages_service
from services.errors import NotFound


def _afresh(info: Info) -> None:
    """Forgets what the connection's loaders read for an earlier event, so this one reads
    afresh. Emptied in place rather than replaced: fourteen new loaders per listener per event,
    living on as the connection's, were some 40% of the time of a fan-out to a thousand
    listeners, most of it in the garbage collector (bench/subscriptions.py)."""
    for loader in vars(info.context.loaders).values():
        if isinstance(loader, DataLoader):
            loader.clear_all()


def _notification(message: bytes) -> NotificationType:
    return NotificationType.from_row(live.notification_of(message))


def _message(message: bytes) -> MessageType:
    return MessageType.from_row(live.message_of(message))


async def notifications(info: Info) -> AsyncGenerator[NotificationType, None]:
    user = await require_user(info)
    async with info.context.services.pubsub.subscribe(live.notifications_channel(user.id)) as feed:
        async for message in feed:
            _afresh(info)
            yield shared_payload(message, _notification)


async def booking_updated(info: Info, id: strawberry.ID) -> AsyncGenerator[BookingType, None]:
    booking_id = node_id(id, "Booking", "id")
    loaders = info.context.loaders
    if not await can_see_booking(info, await loaders.booking_by_id.load(booking_id)):
        raise NotFound("No such booking.")
    async with info.context.services.pubsub.subscribe(live.booking_channel(booking_id)) as feed:
        async for _ in feed:
            _afresh(info)
            row = await info.context.loaders.booking_by_id.load(booking_id)
            if row is not None:
                yield BookingType.from_row(row)


async def message_received(
    info: Info, thread_id: strawberry.ID | None = None
) -> AsyncGenerator[MessageType, None]:
    user = await require_user(info)
    only_thread: int | None = None
    if thread_id is not None:
        only_thread = node_id(thread_id, "MessageThread", "threadId")
        thread = await info.context.loaders.thread_by_id.load(only_thread)
        if thread is None or not messages_service.can_see(user, thread):
            raise NotFound("No such thread.")
    async with info.context.services.pubsub.subscribe(live.messages_channel(user.id)) as feed:
        async for message in feed:
            news = shared_payload(message, _message)
            if only_thread is None or news._row.thread_id == only_thread:
                _afresh(info)
                yield news


@strawberry.type(description="What a signed-in client hears as it happens, over the websocket.")
class Subscription:
    notifications: AsyncGenerator[NotificationType, None] = strawberry.subscription(
        resolver=notifications,
        permission_classes=[IsAuthenticated],
        description="The signed-in user's new notifications, as they are made.",
    )
    booking_updated: AsyncGenerator[BookingType, None] = strawberry.subscription(
        resolver=booking_updated,
        permission_classes=[IsAuthenticated],
        description="The booking, each time it changes (its status, dates or payment); for "
        "its guest, its host and admins.",
    )
    message_received: AsyncGenerator[MessageType, None] = strawberry.subscription(
        resolver=message_received,
        permission_classes=[IsAuthenticated],
        description="Each new message of the thread threadId, or of all the signed-in user's "
        "threads when it is left out (the user's own, sent from another device, included).",
    )
