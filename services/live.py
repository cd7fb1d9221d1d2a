"""What goes live to connected clients (GraphQL subscriptions), and on which channel.

The worker publishes once a change is committed (services/event_handlers.py): a user's new
notification and the messages of their threads on channels of their own, and a booking's changes
on the booking's channel. A message carries the row itself, so a thousand listeners to one
notification cost no read each; a booking's listeners read it afresh, as their viewer may see it.
Who may listen to a channel is decided when a subscription starts (resolvers/subscriptions.py).
"""

from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Message, MessageThread
from db.rows import MessageRow, NotificationRow
from gateways.pubsub import PubSub
from services import notifications


def notifications_channel(user_id: int) -> str:
    return f"notifications:{user_id}"


def messages_channel(user_id: int) -> str:
    """The messages of every thread the user takes part in, whoever wrote them."""
    return f"messages:{user_id}"


def booking_channel(booking_id: int) -> str:
    return f"booking:{booking_id}"


async def publish_notification(
    session: AsyncSession, pubsub: PubSub, *, notification_id: int, user_id: int
) -> None:
    rows = await notifications.of_user(session, user_id=user_id, ids=[notification_id])
    if (row := rows.get(notification_id)) is not None:
        await pubsub.publish(notifications_channel(user_id), _encode(row._asdict()))


async def publish_message(session: AsyncSession, pubsub: PubSub, *, message_id: int) -> None:
    """To both sides of the thread: the recipient, and the sender's other devices."""
    found = (
        await session.execute(
            select(Message, MessageThread.guest_id, MessageThread.host_id)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(Message.id == message_id)
        )
    ).one_or_none()
    if found is None:
        return
    message, guest_id, host_id = found
    encoded = _encode(MessageRow.of(message)._asdict())
    for user_id in (guest_id, host_id):
        await pubsub.publish(messages_channel(user_id), encoded)


async def publish_booking_change(pubsub: PubSub, *, booking_id: int) -> None:
    await pubsub.publish(booking_channel(booking_id), b"{}")


def notification_of(message: bytes) -> NotificationRow:
    fields = orjson.loads(message)
    return NotificationRow(
        **fields
        | {
            "created_at": datetime.fromisoformat(fields["created_at"]),
            "read_at": fields["read_at"] and datetime.fromisoformat(fields["read_at"]),
        }
    )


def message_of(message: bytes) -> MessageRow:
    fields = orjson.loads(message)
    return MessageRow(**fields | {"created_at": datetime.fromisoformat(fields["created_at"])})


def _encode(fields: dict[str, object]) -> bytes:
    return orjson.dumps(fields)
