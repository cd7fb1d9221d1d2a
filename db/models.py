"""SQLAlchemy models: the tables of Roost."""

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import (
    ARRAY,
    DATEMULTIRANGE,
    JSONB,
    TSVECTOR,
    ExcludeConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.states import (
    ACTIVE_BOOKING,
    LIVE_PAYMENT,
    BookingStatus,
    CancellationPolicy,
    DisputeResolution,
    DisputeStatus,
    ListingModeration,
    ListingStatus,
    NotificationKind,
    OperationKind,
    OperationStatus,
    Party,
    PaymentProvider,
    PaymentStatus,
    PayoutAccountStatus,
    PayoutStatus,
    ReviewKind,
    TokenPurpose,
    UserStatus,
    sql_list,
)

# Stable constraint names, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    """A person with an account: every user is a guest; some are hosts, a few are admins."""

    __tablename__ = "user_account"
    __table_args__ = (
        # One account per address, whatever its case.
        Index("uq_user_account_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint(f"status IN ({sql_list(UserStatus)})", name="status"),
        CheckConstraint("'GUEST' = ANY(roles)", name="every_user_is_a_guest"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    avatar_upload_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("upload.id", ondelete="SET NULL", use_alter=True)
    )
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("ARRAY['GUEST']"), nullable=False
    )
    status: Mapped[str] = mapped_column(Text, server_default=UserStatus.ACTIVE)
    # None for an account that only ever signed in through Google or Facebook.
    password_hash: Mapped[str | None] = mapped_column(Text)
    # AES-GCM ciphertext (auth.crypto.FieldCipher); never the number itself.
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the user typed back the code texted to the number on file; a new number clears it.
    phone_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    language: Mapped[str] = mapped_column(Text, server_default="en")
    time_zone: Mapped[str] = mapped_column(Text, server_default="UTC")
    notification_channels: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("ARRAY['EMAIL', 'IN_APP']"), nullable=False
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )

    avatar: Mapped["Upload | None"] = relationship(
        foreign_keys=[avatar_upload_id], lazy="joined", innerjoin=False
    )

    @property
    def avatar_thumbnail_key(self) -> str | None:
        """As the user loader's rows carry it, so both can stand for a user."""
        if self.avatar_upload_id is None:
            # Without touching the relationship: a user built in this request (not read with
            # its avatar joined) would lazy-load it, after its session has closed.
            return None
        return self.avatar.thumbnail_key if self.avatar is not None else None


class Upload(Base):
    """An image a user uploaded, stored re-encoded without its metadata, with a thumbnail."""

    __tablename__ = "upload"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    storage_key: Mapped[str] = mapped_column(Text)
    thumbnail_key: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class OAuthIdentity(Base):
    """A Google or Facebook account linked to a Roost user."""

    __tablename__ = "oauth_identity"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class RefreshToken(Base):
    """One refresh token. Its family is a sign-in session: every rotation stays in the family,
    and reuse of a rotated token revokes the whole family. A session has ended once any of its
    tokens is revoked."""

    __tablename__ = "refresh_token"
    __table_args__ = (
        # Revoked tokens only; a trigger (migration 0006) announces each revocation.
        Index(
            "ix_refresh_token_revoked_family",
            "family_id",
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
        Index(
            "ix_refresh_token_revoked_at",
            "revoked_at",
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    # SHA-256 of the token: the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class OneTimeToken(Base):
    """A single-use token mailed to a user: a password reset or an email verification."""

    __tablename__ = "one_time_token"
    __table_args__ = (CheckConstraint(f"purpose IN ({sql_list(TokenPurpose)})", name="purpose"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class PhoneVerification(Base):
    """The code last texted to a user's number, while it may still be typed back: at most one per
    user, a new one replacing it. The code is sealed with the field cipher, bound to the user and
    to the number's ciphertext, so it verifies only the number it was sent to."""

    __tablename__ = "phone_verification"
    __table_args__ = (CheckConstraint("failed_attempts >= 0", name="failed_attempts"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    code_sealed: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class Amenity(Base):
    """The amenity catalogue; listings keep the ids of theirs in ``Listing.amenity_ids``."""

    __tablename__ = "amenity"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)


# The columns ix_listing_location carries besides the point (migration 0033).
LOCATION_INCLUDES = (
    "id",
    "latitude",
    "longitude",
    "moderation",
    "nightly_price_usd",
    "max_guests",
    "min_nights",
    "max_nights",
    "instant_book",
    "property_type",
    "amenity_ids",
    "rating_avg",
    "review_count",
    "created_at",
)


class Listing(Base):
    """A place to stay. Deleting one only marks it, so its bookings keep their history."""

    __tablename__ = "listing"
    __table_args__ = (
        CheckConstraint(
            "property_type IN ('ENTIRE_PLACE', 'PRIVATE_ROOM', 'SHARED_ROOM', 'HOTEL_ROOM')",
            name="property_type",
        ),
        CheckConstraint(f"status IN ({sql_list(ListingStatus)})", name="status"),
        CheckConstraint(
            f"cancellation_policy IN ({sql_list(CancellationPolicy)})",
            name="cancellation_policy",
        ),
        CheckConstraint(
            "latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180", name="coordinates"
        ),
        CheckConstraint("nightly_price_minor > 0", name="positive_price"),
        CheckConstraint("max_nights IS NULL OR max_nights >= min_nights", name="nights_range"),
        CheckConstraint(f"moderation IN ({sql_list(ListingModeration)})", name="moderation"),
        # The admins' queue: listings waiting (or flagged), oldest first.
        Index(
            "ix_listing_moderation_queue",
            "moderation",
            "moderation_since",
            "id",
            postgresql_where=text("moderation <> 'APPROVED' AND deleted_at IS NULL"),
        ),
        # What the public sees: search reads only these rows, through these indexes.
        Index(
            "ix_listing_search_vector",
            "search_vector",
            postgresql_using="gin",
            postgresql_where=text("status = 'PUBLISHED' AND deleted_at IS NULL"),
        ),
        # Holds every column a search filters or sorts by, so a search near a point finds its
        # page in the index alone (an index-only scan) and reads only the rows it shows.
        Index(
            "ix_listing_location",
            text("point(longitude, latitude)"),
            postgresql_using="gist",
            postgresql_include=list(LOCATION_INCLUDES),
            postgresql_where=text("status = 'PUBLISHED' AND deleted_at IS NULL"),
        ),
        # Words and amenities together: a city's listings with wifi and a pool are found in
        # the index, not by reading every listing of the city.
        Index(
            "ix_listing_search_vector_amenity_ids",
            "search_vector",
            "amenity_ids",
            postgresql_using="gin",
            postgresql_where=text("status = 'PUBLISHED' AND deleted_at IS NULL"),
        ),
        Index(
            "ix_listing_price",
            "nightly_price_usd",
            "id",
            postgresql_where=text("status = 'PUBLISHED' AND deleted_at IS NULL"),
        ),
        # With the words: the newest listings of a city are found in the index alone.
        Index(
            "ix_listing_newest",
            "created_at",
            "id",
            postgresql_include=["search_vector", "moderation"],
            postgresql_where=text("status = 'PUBLISHED' AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    host_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    property_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="DRAFT")
    address_line1: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float] = mapped_column(Double)
    longitude: Mapped[float] = mapped_column(Double)
    time_zone: Mapped[str] = mapped_column(Text)
    check_in_time: Mapped[time] = mapped_column(Time, server_default="15:00")
    check_out_time: Mapped[time] = mapped_column(Time, server_default="11:00")
    max_guests: Mapped[int] = mapped_column(SmallInteger)
    bedrooms: Mapped[int] = mapped_column(SmallInteger)
    beds: Mapped[int] = mapped_column(SmallInteger)
    bathrooms: Mapped[Decimal] = mapped_column(Numeric(3, 1))
    currency: Mapped[str] = mapped_column(Text)
    nightly_price_minor: Mapped[int] = mapped_column(BigInteger)
    cleaning_fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    # The nightly price in US dollars at the current rates: price filters and sorts use it.
    nightly_price_usd: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    instant_book: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    cancellation_policy: Mapped[str] = mapped_column(Text, server_default="MODERATE")
    min_nights: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    max_nights: Mapped[int | None] = mapped_column(SmallInteger)
    amenity_ids: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), server_default=text("'{}'"), nullable=False
    )
    # Lower-case, accent-free city, region, country name and title, for text search.
    search_text: Mapped[str] = mapped_column(Text)
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('simple', search_text)", persisted=True)
    )
    # The mean rating of the published, visible guest reviews (services/reviews.py keeps it
    # with ``listing_rating``'s exact sums), unrounded so that search orders listings exactly
    # as their means do; null until there are enough reviews to show a rating.
    rating_avg: Mapped[Decimal | None] = mapped_column(Numeric)
    review_count: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
    # The admins' review (services/moderation.py): guests see only APPROVED listings.
    moderation: Mapped[str] = mapped_column(Text, server_default=ListingModeration.APPROVED)
    # Why an admin flagged it; null otherwise.
    moderation_reason: Mapped[str | None] = mapped_column(Text)
    # Since when it is in its moderation state: the queue serves the longest waiting first.
    moderation_since: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="SET NULL")
    )


class ListingPhoto(Base):
    __tablename__ = "listing_photo"
    __table_args__ = (UniqueConstraint("listing_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE")
    )
    upload_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("upload.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    caption: Mapped[str | None] = mapped_column(Text)


class BlockedNight(Base):
    """A night the host closed, or another site's feed did (``import_id``); one row a night,
    so blocking and unblocking are exact."""

    __tablename__ = "blocked_night"
    __table_args__ = (
        Index(
            "ix_blocked_night_import_id",
            "import_id",
            postgresql_where=text("import_id IS NOT NULL"),
        ),
    )

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    night: Mapped[date] = mapped_column(Date, primary_key=True)
    import_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("calendar_import.id", ondelete="CASCADE")
    )


class ListingCalendar(Base):
    """A listing's taken nights as search reads them: its closed nights and the stays of its
    PENDING and CONFIRMED bookings, as one multirange. Database triggers on booking and
    blocked_night recompute it in the writer's transaction (migration 0033); nothing else
    writes it, and the bookings themselves stay the guard against double booking."""

    __tablename__ = "listing_calendar"

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    taken_nights: Mapped[Any] = mapped_column(
        DATEMULTIRANGE, server_default=text("'{}'::datemultirange")
    )


class CalendarFeed(Base):
    """A listing's secret iCalendar feed: whoever holds the token reads its booked and closed
    nights (and nothing else), so other sites can keep their calendars in step."""

    __tablename__ = "calendar_feed"
    __table_args__ = (
        CheckConstraint("char_length(token) BETWEEN 32 AND 100", name="token_length"),
        UniqueConstraint("token"),
    )

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class CalendarImport(Base):
    """Another site's iCalendar feed of a listing's taken nights, fetched now and then; the
    nights it shows close on Roost (BlockedNight.import_id), save those booked here, which
    are its conflicts."""

    __tablename__ = "calendar_import"
    __table_args__ = (
        CheckConstraint("char_length(url) BETWEEN 1 AND 2000", name="url_length"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
        Index("ix_calendar_import_due", "next_fetch_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    # The nights the feed showed last (from today on): owned nights pass to another import
    # that wants them when this one lets them go.
    wanted: Mapped[list[date]] = mapped_column(ARRAY(Date), server_default="{}")
    # Nights the feed showed that are booked on Roost: never closed, shown to the host.
    conflicts: Mapped[list[date]] = mapped_column(ARRAY(Date), server_default="{}")
    # The feed's validators at its last fetch, sent back to ask whether it changed.
    feed_etag: Mapped[str | None] = mapped_column(Text)
    feed_last_modified: Mapped[str | None] = mapped_column(Text)
    next_fetch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class NightPrice(Base):
    """A price for one night that overrides the listing's nightly price."""

    __tablename__ = "night_price"
    __table_args__ = (CheckConstraint("price_minor > 0", name="positive_price"),)

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    night: Mapped[date] = mapped_column(Date, primary_key=True)
    price_minor: Mapped[int] = mapped_column(BigInteger)


class ExchangeRate(Base):
    """What one unit of a currency is worth in US dollars."""

    __tablename__ = "exchange_rate"

    currency: Mapped[str] = mapped_column(Text, primary_key=True)
    usd_per_unit: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    updated_at: Mapped[datetime] = created_at_column()


class Booking(Base):
    """A stay. PENDING and CONFIRMED bookings hold their nights: no two may share one.

    A booking keeps its price and cancellation policy as they were when it was made.
    """

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(BookingStatus)})", name="status"),
        CheckConstraint("check_out > check_in", name="stay_has_nights"),
        CheckConstraint(
            "cardinality(night_prices_minor) = check_out - check_in", name="a_price_a_night"
        ),
        CheckConstraint(
            f"cancellation_policy IN ({sql_list(CancellationPolicy)})",
            name="cancellation_policy",
        ),
        CheckConstraint(f"canceled_by IN ({sql_list(Party)})", name="canceled_by"),
        CheckConstraint(
            "(display_currency IS NULL) = (display_rate IS NULL) AND display_rate > 0",
            name="display_rate",
        ),
        # No btree_gist on the embedded server: a one-point integer range stands in for "=".
        ExcludeConstraint(
            (text("int4range(listing_id::int, listing_id::int, '[]')"), "="),
            (text("daterange(check_in, check_out)"), "&&"),
            name="no_double_booking",
            using="gist",
            where=text(f"status IN ({sql_list(ACTIVE_BOOKING)})"),
        ),
        Index("ix_booking_listing_stay", "listing_id", "check_in", "check_out"),
        # What the workers look for: holds to release, stays to complete.
        Index(
            "ix_booking_pending_expiry", "expires_at", postgresql_where=text("status = 'PENDING'")
        ),
        Index("ix_booking_confirmed_end", "ends_at", postgresql_where=text("status = 'CONFIRMED'")),
        # Stays whose hosts are owed a payout (services/payouts.py).
        Index("ix_booking_completed_end", "ends_at", postgresql_where=text("status = 'COMPLETED'")),
        # Cancelled stays whose hosts may be owed the share the guest kept paying.
        Index(
            "ix_booking_canceled_start", "starts_at", postgresql_where=text("status = 'CANCELED'")
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("listing.id"))
    guest_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"), index=True)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    guests: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(Text, server_default="PENDING")
    message: Mapped[str | None] = mapped_column(Text)
    # The price as quoted, in minor units of ``currency``: one entry a night, then the rest.
    currency: Mapped[str] = mapped_column(Text)
    night_prices_minor: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    cleaning_fee_minor: Mapped[int] = mapped_column(BigInteger)
    service_fee_minor: Mapped[int] = mapped_column(BigInteger)
    taxes_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    cancellation_policy: Mapped[str] = mapped_column(Text)
    instant_book: Mapped[bool] = mapped_column(Boolean)
    # Check-in and check-out as instants, at the listing's times in its time zone.
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # While PENDING: when the hold lapses (unpaid, or unanswered by the host).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_by: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    refund_minor: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
    # The guest's preferred currency when they paid, and what one unit of ``currency`` was
    # worth in it then: the booking's amounts are shown in it at that rate ever after.
    display_currency: Mapped[str | None] = mapped_column(Text)
    display_rate: Mapped[Decimal | None] = mapped_column(Numeric)


class Payment(Base):
    """What a guest pays for a booking through a provider. ``amount_minor`` is what was charged
    in all (a modification may add to it); ``refunded_minor`` what went back."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(PaymentStatus)})", name="status"),
        CheckConstraint(f"provider IN ({sql_list(PaymentProvider)})", name="provider"),
        CheckConstraint(
            "amount_minor > 0 AND refunded_minor BETWEEN 0 AND amount_minor", name="amounts"
        ),
        # One payment in play per booking: a second would charge the guest twice.
        Index(
            "uq_payment_live_per_booking",
            "booking_id",
            unique=True,
            postgresql_where=text(f"status IN ({sql_list(LIVE_PAYMENT)})"),
        ),
        Index(
            "ix_payment_check_at",
            "check_at",
            # Cleared once the provider's word is in: only payments to ask about are here.
            postgresql_where=text("check_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("booking.id"), index=True)
    provider: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="PENDING")
    currency: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The provider's id for the payment (a Stripe PaymentIntent, say).
    provider_reference: Mapped[str | None] = mapped_column(Text)
    # Whom a refund is paid to when the provider cannot give the payment back, only pay anew:
    # the M-Pesa number prompted to pay (2547XXXXXXXX). Null for other providers.
    payer: Mapped[str | None] = mapped_column(Text)
    # From when a worker asks the provider where a payment completed with it stands (the
    # guest pays in the browser; the provider's word may never reach us otherwise).
    check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why the provider refused it, in its words (a declined card), once FAILED.
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class PaymentOperation(Base):
    """The ledger: every movement of money, once per idempotency key.

    An entry is written REQUESTED before the provider is asked (with ``effect``: what its
    answer completes on the booking, null when nothing), then SUCCEEDED or FAILED with the
    answer. An entry still REQUESTED at ``retry_at`` is one whose answer a crash lost: the
    worker asks the provider again under the same key.
    """

    __tablename__ = "payment_operation"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_list(OperationKind)})", name="kind"),
        CheckConstraint(f"status IN ({sql_list(OperationStatus)})", name="status"),
        # What the recovery job looks for.
        Index(
            "ix_payment_operation_retry",
            "retry_at",
            postgresql_where=text(f"status = '{OperationStatus.REQUESTED}'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    payment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payment.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text)
    effect: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    provider_reference: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class OutboxEvent(Base):
    """Something that happened, written in the transaction that made it happen; workers claim
    it, run its handlers, retry with backoff and park it after too many failures."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index(
            "ix_outbox_event_due",
            "available_at",
            postgresql_where=text("processed_at IS NULL AND parked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # A claim lasts until then; a worker that died holding one loses it then.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class OutboxDelivery(Base):
    """One handler's runs of one event (services/event_handlers.py): a handler done is not run
    again while another handler of the same event is retried."""

    __tablename__ = "outbox_delivery"

    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("outbox_event.id", ondelete="CASCADE"), primary_key=True
    )
    handler: Mapped[str] = mapped_column(Text, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


SEARCH_GENERATION_SHARDS = 64


class SearchGeneration(Base):
    """The generation of search results, as counters in shards: cached searches are keyed by
    the sum of every ``value``. Triggers (migration 0010) raise a listing's shard (its id % 64)
    in the transaction of any change its search results show, so a committed change is never
    hidden by the cache, and writers of listings in different shards do not wait for each other.
    """

    __tablename__ = "search_generation"
    __table_args__ = (
        CheckConstraint(f"shard >= 0 AND shard < {SEARCH_GENERATION_SHARDS}", name="shard"),
    )

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ProviderEvent(Base):
    """A webhook event a provider sent, recorded in the transaction that applies it: the
    unique (provider, event_id) makes a redelivery, or a second one at the same time, change
    nothing. ``processed_at`` is empty for an event no handler knows."""

    __tablename__ = "provider_event"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    provider: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What came of it (services/provider_events.Outcome), for the admins' event log.
    outcome: Mapped[str | None] = mapped_column(Text)


class PayoutAccount(Base):
    """Where a host is paid: one account at the provider (a Stripe Connect Express account) per
    host. Created before the provider's id is known, so a second request finds the first's row
    and the provider is asked under one idempotency key."""

    __tablename__ = "payout_account"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(PayoutAccountStatus)})", name="status"),
        CheckConstraint(f"provider IN ({sql_list(PaymentProvider)})", name="provider"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    host_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="RESTRICT"), unique=True
    )
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default=PayoutAccountStatus.ONBOARDING)
    details_submitted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Payout(Base):
    """What a host is paid for a completed booking, in minor units of the booking's currency.

    One per booking. ``available_at`` is when a worker may next try it; a worker claims it by
    moving it to SENDING until ``lease_until``, asks the provider under ``idempotency_key`` with
    no transaction open, then records the answer. A worker that died holding a claim leaves it
    to lapse, and the next one asks again under the same key: the provider answers the same
    transfer, so a host is never paid twice.
    """

    __tablename__ = "payout"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(PayoutStatus)})", name="status"),
        CheckConstraint(
            "amount_minor >= 0 AND host_fee_minor >= 0 AND refunds_minor >= 0", name="amounts"
        ),
        Index(
            "ix_payout_due",
            "available_at",
            postgresql_where=text(
                f"status IN ({sql_list((PayoutStatus.PENDING, PayoutStatus.FAILED))})"
            ),
        ),
        Index(
            "ix_payout_sending_lease",
            "lease_until",
            postgresql_where=text(f"status = '{PayoutStatus.SENDING}'"),
        ),
        Index("ix_payout_host_earned", "host_id", "earned_on"),
        Index("ix_payout_host_id", "host_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("booking.id"), unique=True)
    host_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    currency: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    host_fee_minor: Mapped[int] = mapped_column(BigInteger)
    refunds_minor: Mapped[int] = mapped_column(BigInteger)
    # The stay's check-out: the day the host earned it, by which earnings are counted.
    earned_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, server_default=PayoutStatus.PENDING)
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    provider_transfer_id: Mapped[str | None] = mapped_column(Text)
    # When ``idempotency_key`` was first sent: Stripe forgets a key a day later.
    key_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    declines: Mapped[int] = mapped_column(Integer, server_default="0")
    available_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


_CATEGORY_CHECKS = " AND ".join(
    f"({name} IS NULL OR {name} BETWEEN 1 AND 5)"
    for name in ("cleanliness", "accuracy", "communication", "location", "check_in", "value")
)
MAX_REVIEW_TEXT = 2_000


class Review(Base):
    """What one side of a completed stay says of the other: at most one of each kind a booking.

    Double-blind: a review is seen by its author (and admins) only until ``published_at``, set
    for both reviews of a booking at once when the second is written or when the window to
    write closes (``window_closes_at``). A hidden review is kept, with who hid it and why.
    """

    __tablename__ = "review"
    __table_args__ = (
        UniqueConstraint("booking_id", "kind"),
        CheckConstraint(f"kind IN ({sql_list(ReviewKind)})", name="kind"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint(_CATEGORY_CHECKS, name="category_ratings"),
        CheckConstraint(
            f"kind = '{ReviewKind.GUEST_REVIEW}' OR num_nonnulls("
            "cleanliness, accuracy, communication, location, check_in, value, host_response) = 0",
            name="guest_review_fields",
        ),
        CheckConstraint(
            f"char_length(comment) BETWEEN 1 AND {MAX_REVIEW_TEXT}", name="comment_length"
        ),
        CheckConstraint(
            f"host_response IS NULL OR char_length(host_response) BETWEEN 1 AND {MAX_REVIEW_TEXT}",
            name="response_length",
        ),
        CheckConstraint("(host_response IS NULL) = (responded_at IS NULL)", name="responded"),
        CheckConstraint(
            "num_nonnulls(hidden_at, hidden_reason, hidden_by) IN (0, 3)",
            name="hidden",
        ),
        # A listing's page and a guest's profile, newest first.
        Index("ix_review_listing_newest", "listing_id", "created_at", "id"),
        Index("ix_review_subject_newest", "subject_id", "created_at", "id"),
        # What the publishing job looks for.
        Index(
            "ix_review_unpublished_window",
            "window_closes_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("booking.id"))
    listing_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("listing.id"))
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"), index=True)
    subject_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(Text)
    rating: Mapped[int] = mapped_column(SmallInteger)
    cleanliness: Mapped[int | None] = mapped_column(SmallInteger)
    accuracy: Mapped[int | None] = mapped_column(SmallInteger)
    communication: Mapped[int | None] = mapped_column(SmallInteger)
    location: Mapped[int | None] = mapped_column(SmallInteger)
    check_in: Mapped[int | None] = mapped_column(SmallInteger)
    value: Mapped[int | None] = mapped_column(SmallInteger)
    # Plain text as its author typed it (trimmed): never interpreted as markup.
    comment: Mapped[str] = mapped_column(Text)
    host_response: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The stay's check-out plus the window to review it: published by then at the latest.
    window_closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    hidden_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ListingRating(Base):
    """The exact sums and counts behind a listing's ratings, over its published, visible guest
    reviews; ``listing.rating_avg`` and ``listing.review_count`` are kept from them in the same
    transaction. A category's count differs from the overall one: its rating is optional."""

    __tablename__ = "listing_rating"

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    rating_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rating_count: Mapped[int] = mapped_column(Integer, server_default="0")
    cleanliness_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cleanliness_count: Mapped[int] = mapped_column(Integer, server_default="0")
    accuracy_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    accuracy_count: Mapped[int] = mapped_column(Integer, server_default="0")
    communication_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    communication_count: Mapped[int] = mapped_column(Integer, server_default="0")
    location_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    location_count: Mapped[int] = mapped_column(Integer, server_default="0")
    check_in_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    check_in_count: Mapped[int] = mapped_column(Integer, server_default="0")
    value_sum: Mapped[int] = mapped_column(BigInteger, server_default="0")
    value_count: Mapped[int] = mapped_column(Integer, server_default="0")


MAX_MESSAGE_TEXT = 5_000


class MessageThread(Base):
    """The conversation of a guest and a host about one listing: one per guest, host and
    listing, linked to the booking last written about.

    Each side's unread count is kept on the thread (raised for the recipient in the transaction
    that adds a message, zeroed when that side reads), so a list of threads needs no count of
    messages; ``*_read_at`` is when each side last read it.
    """

    __tablename__ = "message_thread"
    __table_args__ = (
        UniqueConstraint("guest_id", "host_id", "listing_id"),
        CheckConstraint("guest_id <> host_id", name="two_people"),
        CheckConstraint("guest_unread >= 0 AND host_unread >= 0", name="unread"),
        # Each side's threads, newest activity first.
        Index("ix_message_thread_guest_activity", "guest_id", "last_message_at", "id"),
        Index("ix_message_thread_host_activity", "host_id", "last_message_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    guest_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    host_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    listing_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("listing.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("booking.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_message_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    guest_unread: Mapped[int] = mapped_column(Integer, server_default="0")
    host_unread: Mapped[int] = mapped_column(Integer, server_default="0")
    guest_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    host_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """One message of a thread: plain text as its sender typed it (trimmed), never markup."""

    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint(f"char_length(body) BETWEEN 1 AND {MAX_MESSAGE_TEXT}", name="body_length"),
        # A thread's messages newest first, and its last one.
        Index("ix_message_thread_newest", "thread_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    thread_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("message_thread.id"))
    sender_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


MAX_NOTIFICATION_TITLE = 200
MAX_NOTIFICATION_BODY = 1_000


class Notification(Base):
    """What a user is told in the app, written by an outbox handler: at most one per event and
    recipient (``event_id``), so an event handled again notifies nobody twice. Read once
    ``read_at`` is set."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        CheckConstraint(f"kind IN ({sql_list(NotificationKind)})", name="kind"),
        CheckConstraint(
            f"char_length(title) BETWEEN 1 AND {MAX_NOTIFICATION_TITLE}", name="title_length"
        ),
        CheckConstraint(
            f"char_length(body) BETWEEN 1 AND {MAX_NOTIFICATION_BODY}", name="body_length"
        ),
        # A user's notifications newest first, and the unread ones (their count, their page).
        Index("ix_notification_user_newest", "user_id", "created_at", "id"),
        Index(
            "ix_notification_user_unread",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    booking_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("booking.id"))
    # The outbox event it tells of; null for one written otherwise.
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """What an admin changed (or an operator, from the command line: no actor), with the
    subject before and after. Kept for good: a trigger refuses every UPDATE and DELETE of it
    (migration 0028)."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        CheckConstraint("char_length(action) BETWEEN 1 AND 100", name="action_length"),
        Index("ix_audit_entry_newest", "created_at", "id"),
        Index("ix_audit_entry_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_audit_entry_actor", "actor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[int] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlatformSettingsRow(Base):
    """What admins changed of the platform's settings: one row at most, a column per setting;
    null keeps the value the environment gives (services/platform_settings.py)."""

    __tablename__ = "platform_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(
            "guest_service_fee_percent BETWEEN 0 AND 100"
            " AND host_fee_percent BETWEEN 0 AND 100"
            " AND occupancy_tax_percent BETWEEN 0 AND 100",
            name="percents",
        ),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    guest_service_fee_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    host_fee_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    occupancy_tax_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    # {"PT": "6.5", ...}: percents as strings, so no float ever holds one.
    tax_percent_by_country: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    payment_window_minutes: Mapped[int | None] = mapped_column(Integer)
    host_response_hours: Mapped[int | None] = mapped_column(Integer)
    payout_delay_hours: Mapped[int | None] = mapped_column(Integer)
    moderation_enabled: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="SET NULL")
    )


MAX_DISPUTE_TEXT = 2_000


class Dispute(Base):
    """A guest or host of a booking asks Roost to step in; an admin resolves it with a refund
    to the guest, a smaller payout to the host, or no action. One open dispute per booking
    (a unique partial index); while it is open, the booking's payout is not sent."""

    __tablename__ = "dispute"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(DisputeStatus)})", name="status"),
        CheckConstraint(
            f"resolution IS NULL OR resolution IN ({sql_list(DisputeResolution)})",
            name="resolution",
        ),
        CheckConstraint(f"opened_as IN ('{Party.GUEST}', '{Party.HOST}')", name="opened_as"),
        CheckConstraint(
            f"char_length(message) BETWEEN 1 AND {MAX_DISPUTE_TEXT}", name="message_length"
        ),
        CheckConstraint("amount_minor IS NULL OR amount_minor > 0", name="amount"),
        Index(
            "uq_dispute_open_booking",
            "booking_id",
            unique=True,
            postgresql_where=text(f"status = '{DisputeStatus.OPEN}'"),
        ),
        Index("ix_dispute_queue", "status", "id"),
        Index("ix_dispute_booking", "booking_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("booking.id"))
    opened_by: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    opened_as: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=DisputeStatus.OPEN)
    resolution: Mapped[str | None] = mapped_column(Text)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DisputeNote(Base):
    """An admin's note on a dispute: for admins only, never shown to the booking's sides."""

    __tablename__ = "dispute_note"
    __table_args__ = (
        CheckConstraint(f"char_length(body) BETWEEN 1 AND {MAX_DISPUTE_TEXT}", name="body_length"),
        Index("ix_dispute_note_dispute", "dispute_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dispute.id"))
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


MAX_WISHLIST_NAME = 100


class Wishlist(Base):
    """A user's named list of places. Private to its owner unless shared: then anyone holding
    the link's token may read it; only the token's SHA-256 is kept, so the table cannot give a
    working link away."""

    __tablename__ = "wishlist"
    __table_args__ = (
        CheckConstraint(f"char_length(name) BETWEEN 1 AND {MAX_WISHLIST_NAME}", name="name_length"),
        CheckConstraint(
            "(check_in IS NULL) = (check_out IS NULL)"
            " AND (check_out IS NULL OR check_out > check_in)",
            name="stay",
        ),
        CheckConstraint("guests IS NULL OR guests BETWEEN 1 AND 50", name="guests"),
        Index("ix_wishlist_user_newest", "user_id", "created_at", "id"),
        Index("uq_wishlist_share_token", "share_token_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(Text)
    check_in: Mapped[date | None] = mapped_column(Date)
    check_out: Mapped[date | None] = mapped_column(Date)
    guests: Mapped[int | None] = mapped_column(SmallInteger)
    share_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WishlistItem(Base):
    """A place saved in a wishlist, once per list. ``user_id`` repeats the list's owner, so
    ``Listing.savedByMe`` and the per-user cap are one index probe each."""

    __tablename__ = "wishlist_item"
    __table_args__ = (
        Index("ix_wishlist_item_newest", "wishlist_id", "saved_at", "listing_id"),
        Index("ix_wishlist_item_user_listing", "user_id", "listing_id"),
    )

    wishlist_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("wishlist.id", ondelete="CASCADE"), primary_key=True
    )
    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listing.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user_account.id", ondelete="CASCADE")
    )
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
