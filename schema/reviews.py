"""Reviews of stays and of guests, and a listing's ratings by category."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.rows import ReviewRow
from db.states import UserStatus
from resolvers.permissions import can_see_booking, can_see_listing, current_user
from schema.accounts import UserType
from schema.bookings import BookingType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import ListingType
from services import reviews as reviews_service

ReviewKind = states.ReviewKind
strawberry.enum(
    ReviewKind,
    description="GUEST_REVIEW: a guest reviews their stay. "
    "HOST_REVIEW: the host reviews the guest.",
)


@strawberry.type(
    name="Review",
    description="What one side of a completed stay says of the other: plain text, never markup. "
    "Double-blind: seen only by its author (and admins) until published, when both sides have "
    "written or 14 days after check-out.",
)
class ReviewType(relay.Node):
    review_id: relay.NodeID[int]
    kind: ReviewKind
    rating: int = strawberry.field(description="1 to 5.")
    comment: str
    cleanliness: int | None = strawberry.field(description="1 to 5; a stay's only, optional.")
    accuracy: int | None
    communication: int | None
    location: int | None
    check_in: int | None
    value: int | None
    host_response: str | None = strawberry.field(description="The host's answer, given once.")
    responded_at: datetime | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = strawberry.field(
        description="Null while only its author (and admins) can see it."
    )
    _row: strawberry.Private[ReviewRow]

    @strawberry.field(description="Whether an admin hid it; only admins see hidden reviews.")
    def hidden(self) -> bool:
        return self._row.hidden_at is not None

    @strawberry.field(description="Why an admin hid it; null for everyone but admins.")
    async def hidden_reason(self, info: Info) -> str | None:
        return self._row.hidden_reason if rules.is_admin(await current_user(info)) else None

    @strawberry.field(
        description="The stay reviewed; null unless the viewer is its guest, its host or an admin."
    )
    async def booking(self, info: Info) -> BookingType | None:
        row = await info.context.loaders.booking_by_id.load_existing(self._row.booking_id)
        return BookingType.from_row(row) if await can_see_booking(info, row) else None

    @strawberry.field(
        description="The listing stayed at; null when the viewer may no longer see it "
        "(unlisted, suspended or deleted since)."
    )
    async def listing(self, info: Info) -> ListingType | None:
        row = await info.context.loaders.listing_by_id.load_existing(self._row.listing_id)
        return ListingType.from_row(row) if await can_see_listing(info, row) else None

    @strawberry.field(description="Who wrote it.")
    async def author(self, info: Info) -> UserType:
        return UserType.from_row(
            await info.context.loaders.user_by_id.load_existing(self._row.author_id)
        )

    @strawberry.field(description="Whom it is about: the host of a stay, or the guest.")
    async def subject(self, info: Info) -> UserType:
        return UserType.from_row(
            await info.context.loaders.user_by_id.load_existing(self._row.subject_id)
        )

    @strawberry.field(description="The author's account is suspended: the review stays, marked so.")
    async def author_suspended(self, info: Info) -> bool:
        author = await info.context.loaders.user_by_id.load_existing(self._row.author_id)
        return author.status == UserStatus.SUSPENDED

    @classmethod
    def from_row(cls, row: ReviewRow) -> Self:
        return cls(
            review_id=row.id,
            kind=ReviewKind(row.kind),
            rating=row.rating,
            comment=row.comment,
            cleanliness=row.cleanliness,
            accuracy=row.accuracy,
            communication=row.communication,
            location=row.location,
            check_in=row.check_in,
            value=row.value,
            host_response=row.host_response,
            responded_at=row.responded_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            published_at=row.published_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.review_by_id.load_many([int(i) for i in node_ids])
        viewer = await current_user(info)
        return [
            cls.from_row(row) if row is not None and reviews_service.can_see(viewer, row) else None
            for row in rows
        ]


@strawberry.type(description="A review in a list, with the cursor to continue after it.")
class ReviewEdge(Edge[ReviewType]):
    pass


@strawberry.type(description="A page of reviews, newest first.")
class ReviewConnection(Connection[ReviewEdge]):
    total_count: int = total_count("How many reviews the viewer can see in all.")


@strawberry.type(description="A listing's mean rating in each category; null when none rated it.")
class RatingCategories:
    cleanliness: float | None
    accuracy: float | None
    communication: float | None
    location: float | None
    check_in: float | None
    value: float | None


@strawberry.input(description="A guest's review of their completed stay.")
class CreateReviewInput:
    booking_id: strawberry.ID
    rating: int = strawberry.field(description="1 to 5.")
    comment: str = strawberry.field(description="Plain text, 1 to 2000 characters.")
    cleanliness: int | None = None
    accuracy: int | None = None
    communication: int | None = None
    location: int | None = None
    check_in: int | None = None
    value: int | None = None


@strawberry.input(description="A host's review of the guest of a completed stay.")
class ReviewGuestInput:
    booking_id: strawberry.ID
    rating: int = strawberry.field(description="1 to 5.")
    comment: str = strawberry.field(description="Plain text, 1 to 2000 characters.")


@strawberry.input(
    description="Changes to a review; fields left out stay as they are, a category given as "
    "null is cleared."
)
class UpdateReviewInput:
    rating: int | None = strawberry.UNSET
    comment: str | None = strawberry.UNSET
    cleanliness: int | None = strawberry.UNSET
    accuracy: int | None = strawberry.UNSET
    communication: int | None = strawberry.UNSET
    location: int | None = strawberry.UNSET
    check_in: int | None = strawberry.UNSET
    value: int | None = strawberry.UNSET
