"""Other sites' calendars a listing imports: each feed, fetched now and then by the worker,
closes the nights it shows, marked as its own (BlockedNight.import_id), through the same
listing lock and the same table as the host's own closed nights, so search, booking and the
search cache see them at once. A later fetch replaces what that feed closed: nights it no
longer shows open again, unless the host or another imported calendar closed them too.

Nights booked on Roost are never touched: a feed showing them records a conflict, shown to
the host and sent to them as a notification.

The fetch itself (gateways/calendar_feeds.py) happens between two short transactions, never
inside one: claim the feeds due, fetch each, then apply each answer.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules
from db.calendar import overlapping_stays
from db.models import BlockedNight, Booking, CalendarImport, Listing
from db.rows import Actor
from gateways.calendar_feeds import AddressRefused, Feed, FeedFetcher, FeedUnavailable
from services import audit, events
from services import listings as listings_service
from services.checkout import Transaction
from services.errors import InvalidInput, NotFound
from services.validation import FieldErrors, has_control_characters

log = logging.getLogger("roost.calendar")

MAX_IMPORTS_PER_LISTING = 5
MAX_NAME_LENGTH = 100
MAX_URL_LENGTH = 2000
IMPORT_DAYS = 730  # nights further ahead than this are not closed
MAX_ERROR_LENGTH = 300
MAX_VALIDATOR_LENGTH = 200  # a feed's ETag or Last-Modified kept for a conditional fetch
CLAIM_BATCH = 10  # fetched side by side: a pass waits for the slowest, at most its timeout


def checked_input(url: str, name: str) -> tuple[str, str]:
    """The URL and name as stored; BAD_USER_INPUT for either that is not fit."""
    url, name = url.strip(), name.strip()
    errors = FieldErrors()
    if not 1 <= len(name) <= MAX_NAME_LENGTH or has_control_characters(name):
        errors.check("name", f"1 to {MAX_NAME_LENGTH} characters, no control characters")
    if len(url) > MAX_URL_LENGTH or has_control_characters(url) or " " in url:
        errors.check("url", f"at most {MAX_URL_LENGTH} characters, no spaces")
    elif not url.lower().startswith(("http://", "https://")):
        errors.check("url", "must be an http or https address")
    if errors:
        raise InvalidInput(fields=errors)
    return url, name


async def check_address(feeds: FeedFetcher, url: str) -> None:
    """Refuses, as BAD_USER_INPUT, a URL whose host is (or resolves to) an address Roost does
    not call. Called before the transaction: it may ask DNS."""
    try:
        await feeds.address_for(url)
    except AddressRefused as refused:
        raise InvalidInput.field("url", str(refused)) from None
    except FeedUnavailable as unavailable:
        raise InvalidInput.field("url", str(unavailable)) from None


async def add_import(
    session: AsyncSession, *, actor: Actor, listing_id: int, url: str, name: str, now: datetime
) -> CalendarImport:
    """A new imported calendar of the listing, fetched at once (the worker is rung)."""
    url, name = checked_input(url, name)
    listing = await listings_service.get_for_change(session, actor=actor, listing_id=listing_id)
    existing = list(
        await session.scalars(
            select(CalendarImport.url).where(CalendarImport.listing_id == listing_id)
        )
    )
    if len(existing) >= MAX_IMPORTS_PER_LISTING:
        raise InvalidInput.field(
            "listingId", f"a listing imports at most {MAX_IMPORTS_PER_LISTING} calendars"
        )
    if url in existing:
        raise InvalidInput.field("url", "this calendar is imported already")
    row = CalendarImport(listing_id=listing_id, url=url, name=name, next_fetch_at=now)
    session.add(row)
    await session.flush()
    events.emit(session, events.CalendarImportAdded(row.id, listing_id), now=now)
    await _audit_if_admin(session, actor, listing, "listing.add_calendar_import", row, now)
    return row


async def remove_import(
    session: AsyncSession, *, actor: Actor, import_id: int, now: datetime
) -> None:
    """Stops importing the calendar; the nights only it closed open again."""
    listing_id = await session.scalar(
        select(CalendarImport.listing_id).where(CalendarImport.id == import_id)
    )
    if listing_id is None:
        raise NotFound("No such calendar import.")
    listing = await listings_service.get_for_change(session, actor=actor, listing_id=listing_id)
    row = await session.get(CalendarImport, import_id, with_for_update=True)
    if row is None:  # removed while we waited for the lock
        raise NotFound("No such calendar import.")
    await _audit_if_admin(session, actor, listing, "listing.remove_calendar_import", row, now)
    owned = await _release(session, row, keep=set())
    await session.delete(row)
    await session.flush()
    await listings_service.hand_back(session, listing_id=listing_id, nights=owned)


async def _audit_if_admin(
    session: AsyncSession,
    actor: Actor,
    listing: Listing,
    action: str,
    row: CalendarImport,
    now: datetime,
) -> None:
    if actor.id != listing.host_id and rules.is_admin(actor):
        await audit.record(
            session,
            actor_id=actor.id,
            action=action,
            subject=("listing", listing.id),
            before=None,
            after={"import": row.id, "name": row.name},
            now=now,
        )


async def imports_of(session: AsyncSession, *, listing_id: int) -> list[CalendarImport]:
    return list(
        await session.scalars(
            select(CalendarImport)
            .where(CalendarImport.listing_id == listing_id)
            .order_by(CalendarImport.id)
        )
    )


# Fetching: claim, fetch outside any transaction, apply.


@dataclass(frozen=True)
class Due:
    import_id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None


async def claim_due(
    session: AsyncSession, *, now: datetime, every: timedelta, limit: int = CLAIM_BATCH
) -> list[Due]:
    """Feeds due for a fetch, each moved ``every`` ahead so no other worker takes it."""
    rows = (
        await session.scalars(
            select(CalendarImport)
            .join(Listing, Listing.id == CalendarImport.listing_id)
            .where(CalendarImport.next_fetch_at <= now, Listing.deleted_at.is_(None))
            .order_by(CalendarImport.next_fetch_at, CalendarImport.id)
            .limit(limit)
            .with_for_update(of=CalendarImport, skip_locked=True)
        )
    ).all()
    for row in rows:
        row.next_fetch_at = now + every
        row.last_fetched_at = now
    await session.flush()
    return [Due(row.id, row.url, row.feed_etag, row.feed_last_modified) for row in rows]


async def fetch_and_apply(
    transaction: Transaction, feeds: FeedFetcher, due: Due, *, now: datetime
) -> None:
    """Fetches one feed (conditionally, when it named a version last time) and applies what
    it shows, or records why it could not."""
    feed: Feed | None = None
    error: str | None = None
    try:
        feed = await feeds.fetch(due.url, etag=due.etag, last_modified=due.last_modified)
    except FeedUnavailable as unavailable:
        error = str(unavailable)
    except Exception:
        log.exception("calendar import %s: fetch failed", due.import_id)
        error = "The feed could not be read."
    await transaction(partial(apply_feed, import_id=due.import_id, feed=feed, error=error, now=now))


async def apply_feed(
    session: AsyncSession,
    *,
    import_id: int,
    feed: Feed | None,
    error: str | None = None,
    now: datetime,
) -> None:
    """Makes the listing's closed nights follow the ``feed``, under the listing's lock; one
    not modified since the last fetch shows what it showed then (applied again: today and
    Roost's bookings may have moved); a fetch that failed (``error``) or a body that is no
    calendar changes no night."""
    listing_id = await session.scalar(
        select(CalendarImport.listing_id).where(CalendarImport.id == import_id)
    )
    if listing_id is None:
        return  # removed since it was claimed
    listing = await session.scalar(
        select(Listing).where(Listing.id == listing_id).with_for_update()
    )
    row = await session.get(CalendarImport, import_id, with_for_update=True)
    if listing is None or row is None:
        return
    today = now.astimezone(ZoneInfo(listing.time_zone)).date()
    until = today + timedelta(days=IMPORT_DAYS)
    shown: set[date] | None = None
    if error is None and feed is not None and feed.not_modified:
        shown = {night for night in row.wanted if today <= night < until}
    elif error is None and feed is not None:
        try:
            shown = nights_shown(
                feed.body, start=today, end=until, zone=ZoneInfo(listing.time_zone)
            )
        except ValueError as bad:
            error = str(bad)
        else:
            row.feed_etag = _version(feed.etag)
            row.feed_last_modified = _version(feed.last_modified)
    if shown is None:
        row.last_error = (error or "The feed could not be read.")[:MAX_ERROR_LENGTH]
        await session.flush()
        return
    booked = await _booked_nights(session, listing_id, today, until)
    conflicts = shown & booked
    free = shown - booked
    released = await _release(session, row, keep=free, since=today)
    if free:
        await session.execute(
            insert(BlockedNight)
            .values([{"listing_id": listing_id, "night": n, "import_id": row.id} for n in free])
            .on_conflict_do_nothing()
        )
    new_conflicts = conflicts - set(row.conflicts)
    row.wanted = sorted(shown)
    row.conflicts = sorted(conflicts)
    row.last_success_at = now
    row.last_error = None
    await session.flush()
    await listings_service.hand_back(session, listing_id=listing_id, nights=released)
    if new_conflicts:
        events.emit(
            session,
            events.CalendarConflicted(
                row.id, listing_id, first_night=min(new_conflicts), nights=len(new_conflicts)
            ),
            now=now,
        )


def _version(value: str | None) -> str | None:
    """A validator worth sending back: a sane length, printable."""
    if value is None or len(value) > MAX_VALIDATOR_LENGTH or has_control_characters(value):
        return None
    return value


async def _booked_nights(
    session: AsyncSession, listing_id: int, start: date, end: date
) -> set[date]:
    stays = await session.execute(
        overlapping_stays(listing_id, start, end).with_only_columns(
            Booking.check_in, Booking.check_out
        )
    )
    return {
        night
        for check_in, check_out in stays
        for night in _nights(check_in, check_out)
        if start <= night < end
    }


async def _release(
    session: AsyncSession, row: CalendarImport, *, keep: set[date], since: date | None = None
) -> list[date]:
    """Opens the nights ``row`` closed that are not in ``keep`` (from ``since`` on); answers
    them, for ``hand_back`` once ``row.wanted`` is current."""
    statement = delete(BlockedNight).where(BlockedNight.import_id == row.id)
    if since is not None:
        statement = statement.where(BlockedNight.night >= since)
    if keep:
        statement = statement.where(BlockedNight.night.not_in(sorted(keep)))
    return list(await session.scalars(statement.returning(BlockedNight.night)))


def _nights(start: date, end: date) -> Iterable[date]:
    return (start + timedelta(days=offset) for offset in range((end - start).days))


def _day(value: object, zone: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return value.astimezone(zone).date() if value.tzinfo is not None else value.date()
    if isinstance(value, date):
        return value
    raise ValueError("An event has a start or end that is not a date.")


def nights_shown(body: bytes, *, start: date, end: date, zone: ZoneInfo) -> set[date]:
    """The nights of [start, end) the feed's events take (ValueError for a body that is not
    iCalendar). An all-day event's DTEND is exclusive; an event with times takes each night
    from its start's date to its end's (at least the night it starts on). Cancelled and
    transparent ("free") events take none; recurrence rules are not expanded."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except Exception:
        raise ValueError("The feed is not an iCalendar file.") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise ValueError("The feed is not an iCalendar file.")
    taken: set[date] = set()
    for event in calendar.walk("VEVENT"):
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
            continue
        try:
            raw_start = event.decoded("DTSTART")
            if "DTEND" in event:
                raw_end = event.decoded("DTEND")
            elif "DURATION" in event:
                raw_end = raw_start + event.decoded("DURATION")
            else:
                raw_end = (
                    raw_start + timedelta(days=1)
                    if not isinstance(raw_start, datetime)
                    else raw_start
                )
        except Exception:
            raise ValueError("An event of the feed has no valid start or end.") from None
        first, last = _day(raw_start, zone), _day(raw_end, zone)
        if isinstance(raw_start, datetime) and last <= first and raw_end > raw_start:
            last = first + timedelta(days=1)
        first, last = max(first, start), min(last, end)
        taken.update(_nights(first, last))
    return taken
