"""Reviews: each side of a completed stay reviews the other, double-blind, and a listing's
rating is the mean of its published, visible guest reviews.

The rules. A stay is reviewed by its guest (GUEST_REVIEW), the guest by the listing's host
(HOST_REVIEW), once each, only once the booking is COMPLETED (never a canceled one), and within
``REVIEW_WINDOW`` of check-out. Neither review is seen by anyone but its author (and admins)
until both are written or the window closes; then both are published in one transaction, which
also adds the guest review's ratings to the listing's. An author may change their review for
``EDIT_WINDOW`` after writing it, while it is unpublished (once published, the other side has
read it). The host answers a published review of their stay once. Admins hide a review (kept,
with the reason) and show it again; hiding takes its ratings out of the listing's.

The listing's numbers are denormalized: ``listing_rating`` holds exact sums and counts, and
``listing.rating_avg`` / ``listing.review_count`` (what search sorts by) are set from them in
the transaction that publishes, hides or shows a review, so the rating a listing shows, the
order search gives and the reviews counted never disagree. ``rating_avg`` is null until
``MIN_REVIEWS_FOR_RATING`` reviews count. Not a loader: search orders every match by the rating
before its LIMIT, which a loader cannot do; aggregating the reviews inside the search instead
took 82 ms a page against 3 ms for the stored column (20,000 listings, 400,000 reviews).

Writers lock the booking first (two reviews of one booking queue there, so the second always
sees the first and publishes the pair), then the review, then the listing's sums.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules
from db.models import MAX_REVIEW_TEXT, Listing, ListingRating, Review
from db.rows import Actor, ReviewRow
from db.states import REVIEW_CATEGORIES, BookingStatus, ReviewKind
from services import audit, bookings, cursors
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.events import ReviewPublished, ReviewReceived, ReviewResponded, emit
from services.validation import FieldErrors, has_control_characters

REVIEW_WINDOW = timedelta(days=14)
EDIT_WINDOW = timedelta(hours=48)
MIN_REVIEWS_FOR_RATING = 3
MAX_TEXT = MAX_REVIEW_TEXT
MAX_HIDE_REASON = 500
MAX_PAGE_SIZE = 100
# The API's names of the category ratings, by column.
CATEGORY_FIELDS = {name: "checkIn" if name == "check_in" else name for name in REVIEW_CATEGORIES}


@dataclass(frozen=True)
class Ratings:
    """An overall rating and, for a stay, the optional ratings by category."""

    rating: int
    categories: Mapping[str, int | None] = field(default_factory=dict)


def _check_rating(errors: FieldErrors, field: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= 5:
        errors.check(field, "must be a whole number from 1 to 5")


def check_ratings(ratings: Ratings, kind: ReviewKind) -> None:
    errors = FieldErrors()
    _check_rating(errors, "rating", ratings.rating)
    for name, value in ratings.categories.items():
        if name not in CATEGORY_FIELDS:
            raise ValueError(f"no category is called {name!r}")
        if value is not None and kind != ReviewKind.GUEST_REVIEW:
            errors.check(CATEGORY_FIELDS[name], "only a stay is rated by category")
        _check_rating(errors, CATEGORY_FIELDS[name], value)
    if errors:
        raise InvalidInput(fields=errors)


def clean_text(raw: str, field: str, *, limit: int = MAX_TEXT) -> str:
    """Text a person will read, kept as typed (trimmed) and shown as plain text: never markup."""
    text = raw.strip()
    if not text:
        raise InvalidInput.field(field, "must not be empty")
    if len(text) > limit:
        raise InvalidInput.field(field, f"must be at most {limit} characters long")
    if has_control_characters(text, allow_newlines=True):
        raise InvalidInput.field(field, "must not contain control characters")
    return text


async def write_review(
    session: AsyncSession,
    *,
    author: Actor,
    booking_id: int,
    kind: ReviewKind,
    ratings: Ratings,
    comment: str,
    now: datetime,
) -> Review:
    """The guest's review of their stay, or the host's of their guest; when the other side's
    is already written, both are published."""
    found = await bookings.lock_booking(session, booking_id)
    if found is None:
        raise NotFound("No such booking.")
    booking, listing = found
    if kind == ReviewKind.GUEST_REVIEW:
        if not rules.can_review_stay(author, guest_id=booking.guest_id):
            raise Forbidden("Only the booking's guest can review this stay.")
        subject_id = listing.host_id
    else:
        if not rules.can_review_guest(author, host_id=listing.host_id):
            raise Forbidden("Only the listing's host can review this booking's guest.")
        subject_id = booking.guest_id
    if booking.status == BookingStatus.CANCELED:
        raise InvalidInput.field("bookingId", "the booking was canceled; only stays are reviewed")
    if booking.status != BookingStatus.COMPLETED:
        raise InvalidInput.field(
            "bookingId", "the stay is not completed yet; reviews open after check-out"
        )
    closes_at = booking.ends_at + REVIEW_WINDOW
    if now >= closes_at:
        raise InvalidInput.field(
            "bookingId",
            f"the {REVIEW_WINDOW.days} days to review this stay closed at {closes_at.isoformat()}",
        )
    check_ratings(ratings, kind)
    text = clean_text(comment, "comment")
    if await _review_of(session, booking.id, kind) is not None:
        raise InvalidInput.field("bookingId", _ALREADY)
    review = Review(
        booking_id=booking.id,
        listing_id=listing.id,
        author_id=author.id,
        subject_id=subject_id,
        kind=kind,
        rating=ratings.rating,
        comment=text,
        window_closes_at=closes_at,
        created_at=now,
        updated_at=now,
        **{name: ratings.categories.get(name) for name in REVIEW_CATEGORIES},
    )
    session.add(review)
    try:
        await session.flush()
    except IntegrityError:  # the booking's lock makes this unreachable; kept as the last word
        raise InvalidInput.field("bookingId", _ALREADY) from None
    emit(session, ReviewReceived(review.id, booking.id, subject_id), now=now)
    other_kind = (
        ReviewKind.HOST_REVIEW if kind == ReviewKind.GUEST_REVIEW else ReviewKind.GUEST_REVIEW
    )
    other = await _review_of(session, booking.id, other_kind, lock=True)
    if other is not None:
        await publish(session, [review, other], now=now)
    return review


_ALREADY = "you already reviewed this stay; a review can be changed with updateReview instead"


async def _review_of(
    session: AsyncSession, booking_id: int, kind: ReviewKind, *, lock: bool = False
) -> Review | None:
    query = select(Review).where(Review.booking_id == booking_id, Review.kind == kind)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def _lock_review(session: AsyncSession, review_id: int) -> Review | None:
    return await session.scalar(
        select(Review)
        .where(Review.id == review_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _visible(actor: Actor | None, review: Review | ReviewRow) -> bool:
    return rules.can_see_review(
        actor,
        author_id=review.author_id,
        published=review.published_at is not None,
        hidden=review.hidden_at is not None,
    )


async def update_review(
    session: AsyncSession,
    *,
    author: Actor,
    review_id: int,
    rating: int | None = None,
    categories: Mapping[str, int | None] | None = None,
    comment: str | None = None,
    now: datetime,
) -> Review:
    """Changes what is given (a category given as None is cleared): by its author, within
    ``EDIT_WINDOW`` of writing it, while it is unpublished."""
    review = await _lock_review(session, review_id)
    if review is None or not _visible(author, review):
        raise NotFound("No such review.")
    if review.author_id != author.id:
        raise Forbidden("Only its author can change a review.")
    if review.published_at is not None:
        raise Conflict("A published review can no longer be changed.")
    if now >= review.created_at + EDIT_WINDOW:
        raise Conflict(
            f"A review can be changed for {int(EDIT_WINDOW.total_seconds() // 3600)} hours "
            "after it is written."
        )
    changed = Ratings(rating if rating is not None else review.rating, categories or {})
    check_ratings(changed, ReviewKind(review.kind))
    review.rating = changed.rating
    for name, value in changed.categories.items():
        setattr(review, name, value)
    if comment is not None:
        review.comment = clean_text(comment, "comment")
    review.updated_at = now
    await session.flush()
    return review


async def respond(
    session: AsyncSession, *, host: Actor, review_id: int, response: str, now: datetime
) -> Review:
    """The listing's host answers a published review of their stay, once."""
    review = await _lock_review(session, review_id)
    if review is None or not _visible(host, review):
        raise NotFound("No such review.")
    host_id = await session.scalar(select(Listing.host_id).where(Listing.id == review.listing_id))
    if review.kind != ReviewKind.GUEST_REVIEW or not rules.can_answer_review(
        host, host_id=host_id or 0
    ):
        raise Forbidden("Only the listing's host can answer a review of the stay.")
    if review.published_at is None:
        raise Conflict("A review can be answered once it is published.")
    if review.host_response is not None:
        raise Conflict("This review has been answered already; a review is answered once.")
    review.host_response = clean_text(response, "response")
    review.responded_at = now
    review.updated_at = now
    await session.flush()
    emit(session, ReviewResponded(review.id, review.author_id), now=now)
    return review


async def hide(
    session: AsyncSession, *, admin: Actor, review_id: int, reason: str, now: datetime
) -> Review:
    """An admin hides a review: it stays, with the reason, and leaves the listing's rating."""
    if not rules.can_moderate_reviews(admin):
        raise Forbidden("Only admins can hide reviews.")
    text = clean_text(reason, "reason", limit=MAX_HIDE_REASON)
    review = await _lock_review(session, review_id)
    if review is None:
        raise NotFound("No such review.")
    if review.hidden_at is not None:
        raise Conflict("This review is hidden already.")
    review.hidden_at = now
    review.hidden_reason = text
    review.hidden_by = admin.id
    review.updated_at = now
    await session.flush()
    if review.published_at is not None:
        await _count(session, [review], sign=-1)
    await audit.record(
        session,
        actor_id=admin.id,
        action="review.hide",
        subject=("Review", review.id),
        before={"hidden": False},
        after={"hidden": True},
        reason=text,
        now=now,
    )
    return review


async def unhide(session: AsyncSession, *, admin: Actor, review_id: int, now: datetime) -> Review:
    if not rules.can_moderate_reviews(admin):
        raise Forbidden("Only admins can show hidden reviews.")
    review = await _lock_review(session, review_id)
    if review is None:
        raise NotFound("No such review.")
    if review.hidden_at is None:
        raise Conflict("This review is not hidden.")
    reason = review.hidden_reason
    review.hidden_at = review.hidden_reason = review.hidden_by = None
    review.updated_at = now
    await session.flush()
    if review.published_at is not None:
        await _count(session, [review], sign=1)
    await audit.record(
        session,
        actor_id=admin.id,
        action="review.unhide",
        subject=("Review", review.id),
        before={"hidden": True, "reason": reason},
        after={"hidden": False},
        now=now,
    )
    return review


# Publishing, and the listing's numbers.


async def publish(session: AsyncSession, reviews: Iterable[Review], *, now: datetime) -> None:
    """Publishes the (locked) reviews not yet published, counting their ratings."""
    due = [review for review in reviews if review.published_at is None]
    for review in due:
        review.published_at = now
        emit(session, ReviewPublished(review.id, review.booking_id, review.listing_id), now=now)
    await session.flush()
    await _count(session, [review for review in due if review.hidden_at is None], sign=1)


async def publish_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Reviews whose window to review closed with the other side's still unwritten are
    published on their own."""
    reviews = (
        await session.scalars(
            select(Review)
            .where(Review.published_at.is_(None), Review.window_closes_at <= now)
            # Listings in one order, so two publishers never wait on each other's sums.
            .order_by(Review.listing_id, Review.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    await publish(session, reviews, now=now)
    return len(reviews)


async def _count(session: AsyncSession, reviews: list[Review], *, sign: int) -> None:
    """Adds (``sign`` 1) or takes away (-1) guest reviews' ratings from their listings' sums,
    then sets each listing's rating and count from its sums."""
    guest_reviews = sorted(
        (review for review in reviews if review.kind == ReviewKind.GUEST_REVIEW),
        key=lambda review: review.listing_id,
    )
    for review in guest_reviews:
        deltas: dict[str, int] = {"rating_sum": sign * review.rating, "rating_count": sign}
        for name in REVIEW_CATEGORIES:
            value = getattr(review, name)
            if value is not None:
                deltas[f"{name}_sum"] = sign * value
                deltas[f"{name}_count"] = sign
        table = ListingRating.__table__
        statement = insert(ListingRating).values(listing_id=review.listing_id, **deltas)
        upsert = statement.on_conflict_do_update(
            index_elements=[table.c.listing_id],
            set_={name: table.c[name] + statement.excluded[name] for name in deltas},
        ).returning(ListingRating.rating_sum, ListingRating.rating_count)
        total, count = (await session.execute(upsert)).one()
        await session.execute(
            update(Listing)
            .where(Listing.id == review.listing_id)
            .values(review_count=count, rating_avg=mean_rating(total, count))
            .execution_options(synchronize_session=False)
        )


def mean_rating(total: int, count: int) -> Decimal | None:
    """The rating a listing shows: the mean, once enough reviews count; else none."""
    if count < MIN_REVIEWS_FOR_RATING:
        return None
    return Decimal(total) / Decimal(count)


# Reading.


@dataclass(frozen=True)
class ReviewPage:
    reviews: list[ReviewRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


async def list_reviews(
    session: AsyncSession,
    *,
    viewer: Actor | None,
    kind: ReviewKind,
    listing_id: int | None = None,
    subject_id: int | None = None,
    first: int = 20,
    after: str | None = None,
) -> ReviewPage:
    """A page of the reviews of a listing's stays or of a guest, newest first: those published
    and not hidden, the viewer's own, and for admins every one (hidden ones are marked)."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = [Review.kind == kind]
    if listing_id is not None:
        conditions.append(Review.listing_id == listing_id)
    if subject_id is not None:
        conditions.append(Review.subject_id == subject_id)
    if not rules.is_admin(viewer):
        public = Review.published_at.is_not(None) & Review.hidden_at.is_(None)
        conditions.append(
            or_(public, Review.author_id == viewer.id) if viewer is not None else public
        )
    query = select(*(getattr(Review, name) for name in ReviewRow._fields)).where(*conditions)
    key = (Review.created_at, Review.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [ReviewRow._make(row) for row in rows[:first]]
    return ReviewPage(
        page,
        [cursors.pack_moment(row.created_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(Review).where(*conditions),
    )


def can_see(actor: Actor | None, review: ReviewRow) -> bool:
    return _visible(actor, review)
