"""Listing moderation: admins approve listings, or flag them with a reason, before guests see
them. A listing's moderation is apart from its status (DRAFT, PUBLISHED, UNLISTED, SUSPENDED):
only a PUBLISHED listing whose moderation is APPROVED is in search, bookable and shown to
everyone; its host and the admins see it whatever its state.

The rules.
- With moderation on (the platform setting ``moderation_enabled``), a listing published for
  the first time (created published, or a draft published) waits as PENDING_REVIEW, and so does
  a listing past its draft whose content changes: its title, description, property type,
  address or position, amenities or photos (``REVIEWED_FIELDS``; prices, the calendar, house
  times, guest counts and policies do not need a look). Changes made by an admin never wait.
- With it off, nothing new waits. Listings already waiting stay in the queue: switching
  moderation off does not approve what nobody looked at.
- A flagged listing is out of search and unbookable at once. Its host may edit it; a content
  change sends it back to PENDING_REVIEW whether moderation is on or off (a flag is an admin's
  call, and only an admin lifts it).
- Approving and flagging are the admins' own (audited as "listing.approve" and "listing.flag",
  the host told in the app and by mail); the queue serves the longest waiting first.

Bookings already made on a listing that goes back to review stand; only new ones wait.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules
from db.models import Listing
from db.rows import Actor
from db.states import ListingModeration, ListingStatus
from services import audit, cursors, events
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.validation import has_control_characters

MAX_PAGE_SIZE = 100
MAX_REASON = 500
REVIEWED_FIELDS = frozenset(
    {
        "title",
        "description",
        "property_type",
        "address_line1",
        "city",
        "region",
        "postal_code",
        "country",
        "latitude",
        "longitude",
        "amenity_ids",
    }
)
"""The columns whose change a reviewer must see again (photos too, kept in their own table)."""


def send_for_review(listing: Listing, *, now: datetime) -> None:
    """The listing waits in the queue (demo data and tests make one wait this way)."""
    listing.moderation = ListingModeration.PENDING_REVIEW
    listing.moderation_since = now


def after_create(listing: Listing, *, moderation_on: bool, now: datetime) -> None:
    """A new listing, published at once, waits when moderation is on."""
    if moderation_on and listing.status == ListingStatus.PUBLISHED:
        send_for_review(listing, now=now)


def after_change(
    listing: Listing,
    *,
    actor: Actor,
    moderation_on: bool,
    status_before: str,
    content_changed: bool,
    now: datetime,
) -> None:
    """Where a listing its host just changed stands with the admins (see the rules above)."""
    if rules.is_admin(actor) and actor.id != listing.host_id:
        return
    if listing.moderation == ListingModeration.FLAGGED:
        if content_changed:
            send_for_review(listing, now=now)
        return
    if not moderation_on or listing.moderation == ListingModeration.PENDING_REVIEW:
        return
    first_published = (
        status_before == ListingStatus.DRAFT and listing.status == ListingStatus.PUBLISHED
    )
    if first_published or (content_changed and listing.status != ListingStatus.DRAFT):
        send_for_review(listing, now=now)


@dataclass(frozen=True)
class ModerationPage:
    listings: list[Listing]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


async def moderation_queue(
    session: AsyncSession,
    *,
    admin: Actor,
    state: ListingModeration = ListingModeration.PENDING_REVIEW,
    first: int = 20,
    after: str | None = None,
) -> ModerationPage:
    """Listings in ``state`` (not deleted), the longest in it first."""
    if not rules.is_admin(admin):
        raise Forbidden("Only admins see the moderation queue.")
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = [Listing.moderation == ListingModeration(state), Listing.deleted_at.is_(None)]
    query = select(Listing).where(*conditions)
    key = (Listing.moderation_since, Listing.id)
    if after:
        query = query.where(tuple_(*key) > cursors.unpack_moment(after))
    found = list(await session.scalars(query.order_by(*key).limit(first + 1)))
    page = found[:first]
    return ModerationPage(
        page,
        [cursors.pack_moment(listing.moderation_since, listing.id) for listing in page],
        len(found) > first,
        select(func.count()).select_from(Listing).where(*conditions),
    )


async def _locked(session: AsyncSession, listing_id: int) -> Listing:
    listing = await session.scalar(
        select(Listing)
        .where(Listing.id == listing_id, Listing.deleted_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if listing is None:
        raise NotFound("No such listing.")
    return listing


def _review(
    listing: Listing, state: ListingModeration, *, admin: Actor, now: datetime
) -> dict[str, Any]:
    """Moves the listing to ``state`` as ``admin``'s review; answers what it was."""
    before = {"moderation": listing.moderation, "moderation_reason": listing.moderation_reason}
    listing.moderation = state
    listing.moderation_since = listing.reviewed_at = now
    listing.reviewed_by_id = admin.id
    return before


async def approve(
    session: AsyncSession, *, admin: Actor, listing_id: int, now: datetime
) -> Listing:
    """The listing is in search and bookable (if published) from the commit on; its host is
    told. Approving a flagged listing lifts the flag."""
    if not rules.is_admin(admin):
        raise Forbidden("Only admins can approve listings.")
    listing = await _locked(session, listing_id)
    if listing.moderation == ListingModeration.APPROVED:
        raise Conflict("This listing is approved already.")
    before = _review(listing, ListingModeration.APPROVED, admin=admin, now=now)
    listing.moderation_reason = None
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="listing.approve",
        subject=("Listing", listing.id),
        before=before,
        after={"moderation": listing.moderation, "moderation_reason": None},
        now=now,
    )
    events.emit(session, events.ListingApproved(listing.id, listing.host_id), now=now)
    return listing


def check_reason(reason: str) -> str:
    text = reason.strip()
    if not 1 <= len(text) <= MAX_REASON or has_control_characters(text):
        raise InvalidInput.field("reason", f"must be 1 to {MAX_REASON} characters of plain text")
    return text


async def flag(
    session: AsyncSession, *, admin: Actor, listing_id: int, reason: str, now: datetime
) -> Listing:
    """Out of search and unbookable from the commit on (the search cache with it: the change
    raises the listing's search generation); its host is told why, and may edit it for another
    review. Flagging a flagged listing again changes the reason."""
    if not rules.is_admin(admin):
        raise Forbidden("Only admins can flag listings.")
    text = check_reason(reason)
    listing = await _locked(session, listing_id)
    if listing.moderation == ListingModeration.FLAGGED and listing.moderation_reason == text:
        raise Conflict("This listing is flagged for this reason already.")
    before = _review(listing, ListingModeration.FLAGGED, admin=admin, now=now)
    listing.moderation_reason = text
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="listing.flag",
        subject=("Listing", listing.id),
        before=before,
        after={"moderation": listing.moderation, "moderation_reason": text},
        reason=text,
        now=now,
    )
    events.emit(session, events.ListingFlagged(listing.id, listing.host_id, text), now=now)
    return listing
