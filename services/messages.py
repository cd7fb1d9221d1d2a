"""Messages: a guest and a host write to each other about a listing, in one thread per guest,
host and listing.

The rules. A guest starts (or continues) the thread about a listing they can see (published,
not deleted) by its id; its host cannot write to themselves there. Either side of a booking
writes about it by the booking's id: that is the thread of the booking's guest, the listing's
host and the listing, linked to the booking. Any participant continues a thread by its id, even
once its listing is unlisted: the conversation is already theirs. Nobody else reads or writes a
thread, admins included, and to them it does not exist (NOT_FOUND, never FORBIDDEN, so a
thread's id or a booking's reveals nothing). A body is plain text, trimmed, 1 to
``MAX_BODY`` characters, without control characters (line breaks and tabs aside).

A new thread is inserted with ON CONFLICT DO NOTHING on its unique key and then read locked: two
first messages racing from one guest about one listing meet in one thread, the second waiting
for the first's insert to commit. Writers lock the thread, so the unread counts (kept on it for
each side) are counted exactly.
"""

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar
from urllib.parse import quote

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from auth import rules
from db.models import MAX_MESSAGE_TEXT, Booking, Listing, Message, MessageThread, User
from db.rows import Actor, MessageRow, MessageThreadRow
from services import cursors
from services.errors import InvalidInput, NotFound
from services.events import MessageMailDue, MessageReceived, emit
from services.validation import has_control_characters

MAX_BODY = MAX_MESSAGE_TEXT
MAX_THREAD_PAGE = 100
MAX_MESSAGE_PAGE = 100
_NO_THREAD = "No such thread."
RowT = TypeVar("RowT")
_EXACTLY_ONE = "give exactly one of threadId, listingId and bookingId"


def clean_body(raw: str) -> str:
    body = raw.strip()
    if not body:
        raise InvalidInput.field("body", "must not be empty")
    if len(body) > MAX_BODY:
        raise InvalidInput.field("body", f"must be at most {MAX_BODY} characters long")
    if has_control_characters(body, allow_newlines=True):
        raise InvalidInput.field("body", "must not contain control characters")
    return body


@dataclass(frozen=True)
class Target:
    """Where a message goes: exactly one of a thread, a listing or a booking."""

    thread_id: int | None = None
    listing_id: int | None = None
    booking_id: int | None = None

    def check(self) -> None:
        given = [self.thread_id, self.listing_id, self.booking_id]
        if sum(value is not None for value in given) != 1:
            raise InvalidInput(
                "Give exactly one of threadId, listingId and bookingId.",
                fields=dict.fromkeys(("threadId", "listingId", "bookingId"), _EXACTLY_ONE),
            )


async def _lock_thread(session: AsyncSession, thread_id: int) -> MessageThread | None:
    return await session.scalar(
        select(MessageThread)
        .where(MessageThread.id == thread_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _participant_thread(session: AsyncSession, actor: Actor, thread_id: int) -> MessageThread:
    thread = await _lock_thread(session, thread_id)
    if thread is None or not rules.is_thread_participant(
        actor, guest_id=thread.guest_id, host_id=thread.host_id
    ):
        raise NotFound(_NO_THREAD)
    return thread


async def _thread_of(
    session: AsyncSession, *, guest_id: int, host_id: int, listing_id: int, now: datetime
) -> MessageThread:
    """The thread of the guest, host and listing, locked; made if there is none."""
    await session.execute(
        insert(MessageThread)
        .values(
            guest_id=guest_id,
            host_id=host_id,
            listing_id=listing_id,
            created_at=now,
            last_message_at=now,
        )
        .on_conflict_do_nothing(index_elements=["guest_id", "host_id", "listing_id"])
    )
    thread = await session.scalar(
        select(MessageThread)
        .where(
            MessageThread.guest_id == guest_id,
            MessageThread.host_id == host_id,
            MessageThread.listing_id == listing_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if thread is None:
        raise RuntimeError("the thread just upserted is gone")
    return thread


async def _target_thread(
    session: AsyncSession, *, sender: Actor, target: Target, now: datetime
) -> MessageThread:
    if target.thread_id is not None:
        return await _participant_thread(session, sender, target.thread_id)
    if target.listing_id is not None:
        listing = await session.get(Listing, target.listing_id)
        if listing is None or not rules.listing_is_public(
            status=listing.status,
            deleted=listing.deleted_at is not None,
            moderation=listing.moderation,
        ):
            raise NotFound("No such listing.")
        if not rules.can_start_thread_about_listing(sender, host_id=listing.host_id):
            raise InvalidInput.field("listingId", "is your own listing: nobody to write to")
        return await _thread_of(
            session, guest_id=sender.id, host_id=listing.host_id, listing_id=listing.id, now=now
        )
    if target.booking_id is None:
        raise ValueError("a target names a thread, a listing or a booking")
    return await _booking_thread(session, sender=sender, booking_id=target.booking_id, now=now)


async def _booking_thread(
    session: AsyncSession, *, sender: Actor, booking_id: int, now: datetime
) -> MessageThread:
    """The thread of the booking's guest, its host and its listing, linked to the booking."""
    found = (
        await session.execute(
            select(Booking.id, Booking.guest_id, Booking.listing_id, Listing.host_id)
            .join(Listing, Listing.id == Booking.listing_id)
            .where(Booking.id == booking_id)
        )
    ).first()
    if found is None or not rules.is_thread_participant(
        sender, guest_id=found.guest_id, host_id=found.host_id
    ):
        raise NotFound("No such booking.")
    thread = await _thread_of(
        session,
        guest_id=found.guest_id,
        host_id=found.host_id,
        listing_id=found.listing_id,
        now=now,
    )
    thread.booking_id = found.id
    return thread


async def send_message(
    session: AsyncSession,
    *,
    sender: Actor,
    target: Target,
    body: str,
    now: datetime,
    mail_delay: timedelta,
) -> Message:
    """Adds ``sender``'s message to the thread ``target`` names (made if need be). The recipient
    hears of it in the app at once, and by mail if it is still unread ``mail_delay`` later."""
    target.check()
    text = clean_body(body)
    thread = await _target_thread(session, sender=sender, target=target, now=now)
    message = Message(thread_id=thread.id, sender_id=sender.id, body=text, created_at=now)
    session.add(message)
    thread.last_message_at = now
    # Writing is reading: the sender has seen everything before their own message.
    if sender.id == thread.guest_id:
        thread.guest_unread, thread.guest_read_at = 0, now
        thread.host_unread += 1
        recipient_id = thread.host_id
    else:
        thread.host_unread, thread.host_read_at = 0, now
        thread.guest_unread += 1
        recipient_id = thread.guest_id
    await session.flush()
    emit(session, MessageReceived(message.id, thread.id, sender.id, recipient_id), now=now)
    emit(session, MessageMailDue(message.id, thread.id, recipient_id), now=now, delay=mail_delay)
    return message


async def mark_read(
    session: AsyncSession, *, reader: Actor, thread_id: int, now: datetime
) -> MessageThread:
    """The reader has read every message of the thread so far."""
    thread = await _participant_thread(session, reader, thread_id)
    if reader.id == thread.guest_id:
        thread.guest_unread, thread.guest_read_at = 0, now
    else:
        thread.host_unread, thread.host_read_at = 0, now
    await session.flush()
    return thread


@dataclass(frozen=True)
class Unread:
    """A message its recipient has not read, and what a mail about it names."""

    message: Message
    thread: MessageThread
    listing: Listing
    sender: User
    recipient: User


async def unread_news(
    session: AsyncSession, *, message_id: int, recipient_id: int
) -> Unread | None:
    """The message, if its recipient is away: they have not read it (their read marker on the
    thread is before it) and it is the last of its sender's messages in the thread, so a burst
    of messages makes one piece of news, about its last. None otherwise."""
    sender, recipient = aliased(User), aliased(User)
    found = (
        await session.execute(
            select(Message, MessageThread, Listing, sender, recipient)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .join(Listing, Listing.id == MessageThread.listing_id)
            .join(sender, sender.id == Message.sender_id)
            .join(recipient, recipient.id == recipient_id)
            .where(Message.id == message_id)
        )
    ).one_or_none()
    if found is None:
        return None
    news = Unread(*found)
    message, thread = news.message, news.thread
    if recipient_id == thread.guest_id:
        read_at = thread.guest_read_at
    elif recipient_id == thread.host_id:
        read_at = thread.host_read_at
    else:
        return None
    if read_at is not None and read_at >= message.created_at:
        return None
    # A later message of the same sender is unread too (it came after this one): its own
    # event tells of the burst.
    later = await session.scalar(
        select(Message.id)
        .where(
            Message.thread_id == thread.id,
            Message.sender_id == message.sender_id,
            tuple_(Message.created_at, Message.id) > tuple_(message.created_at, message.id),
        )
        .limit(1)
    )
    return news if later is None else None


def first_words(body: str, limit: int = 160) -> str:
    """The start of a message, on one line, cut at a word within ``limit`` characters."""
    text = " ".join(body.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def thread_path(thread_id: int) -> str:
    """Where the frontend shows a thread: by the id the API gives it (a Relay global id, the
    base64 of ``MessageThread:<id>``), escaped for a URL path."""
    global_id = base64.b64encode(f"MessageThread:{thread_id}".encode()).decode()
    return f"/messages/{quote(global_id, safe='')}"


def unread_for(viewer: Actor | None, thread: MessageThreadRow) -> int:
    if viewer is None:
        return 0
    if viewer.id == thread.guest_id:
        return thread.guest_unread
    return thread.host_unread if viewer.id == thread.host_id else 0


def can_see(viewer: Actor | None, thread: MessageThreadRow) -> bool:
    return rules.is_thread_participant(viewer, guest_id=thread.guest_id, host_id=thread.host_id)


# Reading.


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


def _check_first(first: int, most: int) -> None:
    if not 1 <= first <= most:
        raise InvalidInput.field("first", f"must be between 1 and {most}")


async def list_threads(
    session: AsyncSession, *, viewer: Actor, first: int = 20, after: str | None = None
) -> Page[MessageThreadRow]:
    """The viewer's threads, as guest and as host, newest activity first."""
    _check_first(first, MAX_THREAD_PAGE)
    mine = or_(MessageThread.guest_id == viewer.id, MessageThread.host_id == viewer.id)
    query = select(*(getattr(MessageThread, name) for name in MessageThreadRow._fields)).where(mine)
    key = (MessageThread.last_message_at, MessageThread.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [MessageThreadRow._make(row) for row in rows[:first]]
    return Page(
        page,
        [cursors.pack_moment(row.last_message_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(MessageThread).where(mine),
    )


async def list_messages(
    session: AsyncSession, *, thread_id: int, first: int = 50, after: str | None = None
) -> Page[MessageRow]:
    """A thread's messages, newest first (the caller checked the viewer takes part)."""
    _check_first(first, MAX_MESSAGE_PAGE)
    condition = Message.thread_id == thread_id
    query = select(*(getattr(Message, name) for name in MessageRow._fields)).where(condition)
    key = (Message.created_at, Message.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [MessageRow._make(row) for row in rows[:first]]
    return Page(
        page,
        [cursors.pack_moment(row.created_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(Message).where(condition),
    )
