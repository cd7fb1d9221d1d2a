"""Reviews: write, change, answer, hide; a listing's and a guest's reviews, a page at a time."""

from dataclasses import replace
from functools import partial
from typing import Any

import strawberry

from db.rows import ListingRow
from db.states import REVIEW_CATEGORIES, ReviewKind
from resolvers.node import node_id
from resolvers.permissions import IsAdmin, IsAuthenticated, current_user, require_user
from schema.context import Info
from schema.reviews import (
    CreateReviewInput,
    RatingCategories,
    ReviewConnection,
    ReviewEdge,
    ReviewGuestInput,
    ReviewType,
    UpdateReviewInput,
)
from services import reviews as reviews_service
from services.reviews import Ratings


async def _count_write(info: Info, user_id: int) -> None:
    """Writing reviews is limited per account: a burst of them is abuse, not reviewing."""
    services = info.context.services
    limits = replace(services.attempt_limits, per_account=services.review_writes_per_minute)
    await limits.count("review_write", ip=None, user_id=user_id)


def _categories(input_object: Any) -> dict[str, int | None]:
    return {
        name: value
        for name in REVIEW_CATEGORIES
        if (value := getattr(input_object, name)) is not strawberry.UNSET
    }


async def _review(info: Info, review_id: int) -> ReviewType:
    info.context.loaders.review_by_id.clear(review_id)
    return ReviewType.from_row(await info.context.loaders.review_by_id.load_existing(review_id))


async def _write(
    info: Info, booking_id: strawberry.ID, kind: ReviewKind, ratings: Ratings, comment: str
) -> ReviewType:
    author = await require_user(info)
    await _count_write(info, author.id)
    review = await info.context.database.transaction(
        partial(
            reviews_service.write_review,
            author=author,
            booking_id=node_id(booking_id, "Booking", "bookingId"),
            kind=kind,
            ratings=ratings,
            comment=comment,
            now=info.context.services.clock(),
        )
    )
    return await _review(info, review.id)


async def create_review(info: Info, input: CreateReviewInput) -> ReviewType:
    ratings = Ratings(input.rating, _categories(input))
    return await _write(info, input.booking_id, ReviewKind.GUEST_REVIEW, ratings, input.comment)


async def review_guest(info: Info, input: ReviewGuestInput) -> ReviewType:
    ratings = Ratings(input.rating)
    return await _write(info, input.booking_id, ReviewKind.HOST_REVIEW, ratings, input.comment)


async def update_review(info: Info, id: strawberry.ID, input: UpdateReviewInput) -> ReviewType:
    author = await require_user(info)
    await _count_write(info, author.id)
    review = await info.context.database.transaction(
        partial(
            reviews_service.update_review,
            author=author,
            review_id=node_id(id, "Review", "id"),
            rating=input.rating if input.rating is not strawberry.UNSET else None,
            categories=_categories(input),
            comment=input.comment if input.comment is not strawberry.UNSET else None,
            now=info.context.services.clock(),
        )
    )
    return await _review(info, review.id)


async def respond_to_review(info: Info, review_id: strawberry.ID, response: str) -> ReviewType:
    host = await require_user(info)
    await _count_write(info, host.id)
    review = await info.context.database.transaction(
        partial(
            reviews_service.respond,
            host=host,
            review_id=node_id(review_id, "Review", "reviewId"),
            response=response,
            now=info.context.services.clock(),
        )
    )
    return await _review(info, review.id)


async def hide_review(info: Info, id: strawberry.ID, reason: str) -> ReviewType:
    review = await info.context.database.transaction(
        partial(
            reviews_service.hide,
            admin=await require_user(info),
            review_id=node_id(id, "Review", "id"),
            reason=reason,
            now=info.context.services.clock(),
        )
    )
    return await _review(info, review.id)


async def unhide_review(info: Info, id: strawberry.ID) -> ReviewType:
    review = await info.context.database.transaction(
        partial(
            reviews_service.unhide,
            admin=await require_user(info),
            review_id=node_id(id, "Review", "id"),
            now=info.context.services.clock(),
        )
    )
    return await _review(info, review.id)


# Reading: fields of Listing and User.


def _connection(info: Info, page: reviews_service.ReviewPage) -> ReviewConnection:
    database = info.context.database

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return ReviewConnection.of(
        [
            ReviewEdge(cursor_value=cursor, node=ReviewType.from_row(row))
            for row, cursor in zip(page.reviews, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def reviews_page(
    info: Info,
    *,
    kind: ReviewKind,
    listing_id: int | None = None,
    subject_id: int | None = None,
    first: int | None,
    after: str | None,
) -> ReviewConnection:
    viewer = await current_user(info)
    async with info.context.database.read_session() as session:
        page = await reviews_service.list_reviews(
            session,
            viewer=viewer,
            kind=kind,
            listing_id=listing_id,
            subject_id=subject_id,
            first=20 if first is None else first,
            after=after,
        )
    # The rows are in hand: a node asked for by id later in the request is not read again.
    for row in page.reviews:
        info.context.loaders.review_by_id.prime(row.id, row)
    return _connection(info, page)


async def rating_categories(info: Info, listing: ListingRow) -> RatingCategories:
    sums = await info.context.loaders.ratings_by_listing.load(listing.id)

    def mean(name: str) -> float | None:
        if sums is None or not sums[f"{name}_count"]:
            return None
        return float(sums[f"{name}_sum"] / sums[f"{name}_count"])

    return RatingCategories(**{name: mean(name) for name in REVIEW_CATEGORIES})


@strawberry.type
class ReviewMutations:
    create_review: ReviewType = strawberry.mutation(
        resolver=create_review,
        permission_classes=[IsAuthenticated],
        description="The booking's guest reviews the stay, once, within 14 days of a COMPLETED "
        "stay's check-out. Hidden from others until the host reviews the guest or the 14 days "
        "pass.",
    )
    review_guest: ReviewType = strawberry.mutation(
        resolver=review_guest,
        permission_classes=[IsAuthenticated],
        description="The listing's host reviews the guest of a COMPLETED stay, once, within 14 "
        "days of check-out; double-blind like createReview.",
    )
    update_review: ReviewType = strawberry.mutation(
        resolver=update_review,
        permission_classes=[IsAuthenticated],
        description="Its author changes a review within 48 hours of writing it, while it is "
        "unpublished.",
    )
    respond_to_review: ReviewType = strawberry.mutation(
        resolver=respond_to_review,
        permission_classes=[IsAuthenticated],
        description="The listing's host answers a published review of the stay, once.",
    )
    hide_review: ReviewType = strawberry.mutation(
        resolver=hide_review,
        permission_classes=[IsAdmin],
        description="Admins: hides a review (kept, with the reason); it leaves the rating.",
    )
    unhide_review: ReviewType = strawberry.mutation(
        resolver=unhide_review,
        permission_classes=[IsAdmin],
        description="Admins: shows a hidden review again.",
    )
