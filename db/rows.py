"""What the hot read paths hand out: immutable rows, one type per thing they read.

Dataloaders (db/loaders.py) and search (services/search.py) read through asyncpg (db/raw.py)
and build these from its records; the rules that change things work on the ORM entities of
db/models.py inside a unit of work. A row's attributes are named and typed like the columns of
its table, so a function that only reads (a price, a refund, who may see what) can take the row
or the entity alike. Where the schema must show an entity a service just wrote, ``Row.of`` makes
its row (inside the unit of work, or from attributes a commit leaves loaded).

Rows are named tuples rather than frozen dataclasses: a named tuple is made from a record in C,
where a frozen dataclass sets each field through ``object.__setattr__``. A search page's rows,
built and read, cost 38 us as named tuples and 140 us as frozen dataclasses; the records they
replace, read as attributes through ``__getattr__``, cost 255 us for the listings alone
(bench/rows.py). Read rows by name only: that they are tuples is not part of the contract.
"""

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from db.models import Listing, User


class UserRow(NamedTuple):
    """An account as the schema shows it, with its avatar's thumbnail. Not its password hash,
    which a read model has no use for, nor ``updated_at``, which a change to the user expires
    (``UserRow.of`` reads every field of an entity that may have just been changed)."""

    id: int
    email: str
    first_name: str
    last_name: str
    bio: str | None
    avatar_upload_id: int | None
    roles: list[str]
    status: str
    phone_encrypted: str | None
    email_verified_at: datetime | None
    phone_verified_at: datetime | None
    currency: str
    language: str
    time_zone: str
    notification_channels: list[str]
    created_at: datetime
    avatar_thumbnail_key: str | None

    @classmethod
    def of(cls, user: User) -> "UserRow":
        """The row of a user entity read or changed in this unit of work."""
        return cls._make(getattr(user, name) for name in cls._fields)


class ListingRow(NamedTuple):
    id: int
    host_id: int
    title: str
    description: str
    property_type: str
    status: str
    address_line1: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str
    latitude: float
    longitude: float
    time_zone: str
    check_in_time: time
    check_out_time: time
    max_guests: int
    bedrooms: int
    beds: int
    bathrooms: Decimal
    currency: str
    nightly_price_minor: int
    cleaning_fee_minor: int | None
    nightly_price_usd: Decimal
    instant_book: bool
    cancellation_policy: str
    min_nights: int
    max_nights: int | None
    amenity_ids: list[int]
    search_text: str
    rating_avg: Decimal | None
    review_count: int
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    moderation: str
    moderation_reason: str | None
    moderation_since: datetime
    reviewed_at: datetime | None
    reviewed_by_id: int | None

    @classmethod
    def of(cls, listing: Listing) -> "ListingRow":
        """The row of a listing entity read or changed in this unit of work."""
        return cls._make(getattr(listing, name) for name in cls._fields)


class PhotoRow(NamedTuple):
    """A listing's photo with the stored image it shows."""

    id: int
    listing_id: int
    caption: str | None
    storage_key: str
    width: int
    height: int


class BookingRow(NamedTuple):
    id: int
    listing_id: int
    guest_id: int
    check_in: date
    check_out: date
    guests: int
    status: str
    message: str | None
    currency: str
    night_prices_minor: list[int]
    cleaning_fee_minor: int
    service_fee_minor: int
    taxes_minor: int
    total_minor: int
    cancellation_policy: str
    instant_book: bool
    starts_at: datetime
    ends_at: datetime
    expires_at: datetime | None
    canceled_at: datetime | None
    canceled_by: str | None
    cancel_reason: str | None
    refund_minor: int | None
    created_at: datetime
    updated_at: datetime
    display_currency: str | None
    display_rate: Decimal | None


class PaymentRow(NamedTuple):
    id: int
    booking_id: int
    provider: str
    status: str
    currency: str
    amount_minor: int
    refunded_minor: int
    provider_reference: str | None
    created_at: datetime
    updated_at: datetime
    failure_reason: str | None


class LedgerRow(NamedTuple):
    """A movement of a payment's money the provider confirmed (``payment_operation``)."""

    id: int
    payment_id: int
    kind: str
    amount_minor: int
    completed_at: datetime
    provider_reference: str | None


class PayoutRow(NamedTuple):
    id: int
    booking_id: int
    host_id: int
    currency: str
    amount_minor: int
    host_fee_minor: int
    refunds_minor: int
    earned_on: date
    status: str
    provider_transfer_id: str | None
    attempts: int
    available_at: datetime | None
    last_error: str | None
    paid_at: datetime | None
    created_at: datetime


class PayoutAccountRow(NamedTuple):
    id: int
    host_id: int
    provider: str
    provider_account_id: str | None
    status: str
    ready_at: datetime | None
    created_at: datetime


class ReviewRow(NamedTuple):
    id: int
    booking_id: int
    listing_id: int
    author_id: int
    subject_id: int
    kind: str
    rating: int
    cleanliness: int | None
    accuracy: int | None
    communication: int | None
    location: int | None
    check_in: int | None
    value: int | None
    comment: str
    host_response: str | None
    responded_at: datetime | None
    window_closes_at: datetime
    published_at: datetime | None
    hidden_at: datetime | None
    hidden_reason: str | None
    hidden_by: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, review: Any) -> "ReviewRow":
        """The row of a review entity read or changed in this unit of work."""
        return cls._make(getattr(review, name) for name in cls._fields)


class AmenityRow(NamedTuple):
    id: int
    code: str
    name: str
    category: str


class Actor(Protocol):
    """Whoever acts, as the rules about who may do what see them: a ``UserRow`` (what
    ``resolvers.permissions.current_user`` gives) or a ``db.models.User`` alike."""

    @property
    def id(self) -> int: ...

    @property
    def roles(self) -> Sequence[str]: ...


def columns(fields: Sequence[str], alias: str, **expressions: str) -> str:
    """The select list for a row's ``_fields``, in order: each the column of that name in the
    table aliased ``alias``, unless ``expressions`` gives the SQL for it."""
    return ", ".join(
        f"{expressions[name]} AS {name}" if name in expressions else f"{alias}.{name}"
        for name in fields
    )


class MessageThreadRow(NamedTuple):
    id: int
    guest_id: int
    host_id: int
    listing_id: int
    booking_id: int | None
    created_at: datetime
    last_message_at: datetime
    guest_unread: int
    host_unread: int
    guest_read_at: datetime | None
    host_read_at: datetime | None

    @classmethod
    def of(cls, thread: Any) -> "MessageThreadRow":
        return cls._make(getattr(thread, name) for name in cls._fields)


class MessageRow(NamedTuple):
    id: int
    thread_id: int
    sender_id: int
    body: str
    created_at: datetime

    @classmethod
    def of(cls, message: Any) -> "MessageRow":
        return cls._make(getattr(message, name) for name in cls._fields)


class NotificationRow(NamedTuple):
    id: int
    user_id: int
    kind: str
    title: str
    body: str
    booking_id: int | None
    read_at: datetime | None
    created_at: datetime


class AuditEntryRow(NamedTuple):
    id: int
    actor_id: int | None
    action: str
    subject_type: str
    subject_id: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    created_at: datetime


class DisputeRow(NamedTuple):
    id: int
    booking_id: int
    opened_by: int
    opened_as: str
    message: str
    status: str
    resolution: str | None
    amount_minor: int | None
    currency: str | None
    resolution_note: str | None
    resolved_by: int | None
    resolved_at: datetime | None
    created_at: datetime


class DisputeNoteRow(NamedTuple):
    id: int
    dispute_id: int
    author_id: int
    body: str
    created_at: datetime


class WishlistRow(NamedTuple):
    id: int
    user_id: int
    name: str
    check_in: date | None
    check_out: date | None
    guests: int | None
    shared: bool
    created_at: datetime
