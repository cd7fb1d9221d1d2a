"""Calendar sync with other sites, in iCalendar (RFC 5545): each listing's secret feed of the
nights it cannot be booked, for Airbnb, Booking.com or Google Calendar to import.

The feed shows no guest and no personal data: a booked range is "Reserved", a closed one
"Not available". Its URL is a bearer secret: the token is looked up by a unique index and
never logged; rotating it ends the old URL at once.
"""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules
from db.calendar import blocked_nights, overlapping_stays
from db.models import Booking, CalendarFeed, Listing
from db.rows import Actor
from services import audit
from services import listings as listings_service

FEED_DAYS = 730  # how far ahead a feed looks: importers read about two years
PRODID = "-//Roost//Calendar sync//EN"
RESERVED = "Reserved"
NOT_AVAILABLE = "Not available"


def new_token() -> str:
    """256 random bits, url-safe."""
    return secrets.token_urlsafe(32)


def feed_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/calendar/{token}.ics"


async def export_token(session: AsyncSession, *, listing_id: int) -> str:
    """The listing's feed token, made on first use (listings need none until a host asks)."""
    await session.execute(
        insert(CalendarFeed)
        .values(listing_id=listing_id, token=new_token())
        .on_conflict_do_nothing(index_elements=[CalendarFeed.listing_id])
    )
    token = await session.scalar(
        select(CalendarFeed.token).where(CalendarFeed.listing_id == listing_id)
    )
    assert token is not None  # noqa: S101  # inserted just above unless it was there
    return token


async def rotate_export_token(
    session: AsyncSession, *, actor: Actor, listing_id: int, now: datetime
) -> str:
    """A new feed token for the listing; the old URL stops working when this commits."""
    listing = await listings_service.get_for_change(session, actor=actor, listing_id=listing_id)
    token = new_token()
    await session.execute(
        insert(CalendarFeed)
        .values(listing_id=listing_id, token=token)
        .on_conflict_do_update(
            index_elements=[CalendarFeed.listing_id], set_={"token": token, "created_at": now}
        )
    )
    if actor.id != listing.host_id and rules.is_admin(actor):
        await audit.record(
            session,
            actor_id=actor.id,
            action="listing.rotate_calendar_export_url",
            subject=("listing", listing_id),
            before=None,
            after=None,
            now=now,
        )
    return token


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    start: date
    end: date  # exclusive: the day after the last night
    summary: str


@dataclass(frozen=True)
class Feed:
    listing_id: int
    events: list[FeedEvent]

    @property
    def etag(self) -> str:
        """Changes exactly when an event does (DTSTAMP aside, which follows from it)."""
        digest = hashlib.sha256(f"{self.listing_id}".encode())
        for event in self.events:
            digest.update(f"|{event.uid}|{event.start}|{event.end}|{event.summary}".encode())
        return digest.hexdigest()[:32]


def _runs(nights: Iterable[date]) -> list[tuple[date, date]]:
    """Contiguous runs of nights as [start, end) ranges."""
    runs: list[tuple[date, date]] = []
    for night in sorted(set(nights)):
        if runs and runs[-1][1] == night:
            runs[-1] = (runs[-1][0], night + timedelta(days=1))
        else:
            runs.append((night, night + timedelta(days=1)))
    return runs


async def feed_for_token(
    session: AsyncSession, *, token: str, now: datetime, domain: str
) -> Feed | None:
    """The nights a feed shows, from today where the listing is; None for an unknown token."""
    found = (
        await session.execute(
            select(CalendarFeed.token, Listing.id, Listing.time_zone)
            .join(Listing, Listing.id == CalendarFeed.listing_id)
            .where(CalendarFeed.token == token, Listing.deleted_at.is_(None))
        )
    ).first()
    # The index found it; compared again in constant time all the same.
    if found is None or not secrets.compare_digest(found.token.encode(), token.encode()):
        return None
    listing_id = found.id
    today = now.astimezone(ZoneInfo(found.time_zone)).date()
    until = today + timedelta(days=FEED_DAYS)
    stays = (
        await session.execute(
            overlapping_stays(listing_id, today, until)
            .with_only_columns(Booking.id, Booking.check_in, Booking.check_out)
            .order_by(Booking.check_in)
        )
    ).all()
    held = {
        stay.check_in + timedelta(days=offset)
        for stay in stays
        for offset in range((stay.check_out - stay.check_in).days)
    }
    closed = [
        night
        for night in await session.scalars(blocked_nights(listing_id, today, until))
        if night not in held
    ]
    events = [
        FeedEvent(
            f"booking-{stay.id}-listing-{listing_id}@{domain}",
            stay.check_in,
            stay.check_out,
            RESERVED,
        )
        for stay in stays
    ] + [
        FeedEvent(f"closed-{start:%Y%m%d}-listing-{listing_id}@{domain}", start, end, NOT_AVAILABLE)
        for start, end in _runs(closed)
    ]
    events.sort(key=lambda event: (event.start, event.uid))
    return Feed(listing_id, events)


def render(feed: Feed, *, stamp: datetime) -> bytes:
    """The feed as an iCalendar object: CRLF lines folded at 75 octets, all-day events with
    an exclusive DTEND, ``stamp`` (when the feed last changed) as every DTSTAMP."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    for item in feed.events:
        event = icalendar.Event()
        event.add("uid", item.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", item.start)
        event.add("dtend", item.end)
        event.add("summary", item.summary)
        event.add("transp", "OPAQUE")
        calendar.add_component(event)
    body: bytes = calendar.to_ical()
    return body
