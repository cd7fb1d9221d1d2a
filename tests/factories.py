"""Small factories for test data."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Booking, Listing, ListingPhoto, Upload, User
from services import listings as listings_service
from tests.accounts_helpers import unique_email


async def make_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    first_name: str = "Ana",
    last_name: str = "Silva",
    roles: list[str] | None = None,
) -> User:
    user = User(
        email=email or unique_email(),
        first_name=first_name,
        last_name=last_name,
        roles=roles or ["GUEST"],
    )
    session.add(user)
    await session.flush()
    return user


def listing_fields(**overrides: Any) -> dict[str, Any]:
    """A valid listing as services.listings takes it; override what the test is about."""
    fields: dict[str, Any] = {
        "title": "Sunny flat by the river",
        "description": "Two rooms, a balcony and morning light.",
        "property_type": "ENTIRE_PLACE",
        "address": {"city": "Lisbon", "region": "Lisboa", "country": "PT"},
        "latitude": 38.7223,
        "longitude": -9.1393,
        "max_guests": 4,
        "bedrooms": 2,
        "beds": 2,
        "bathrooms": 1.0,
        "nightly_price": {"amount": Decimal("100"), "currency": "EUR"},
        "amenities": ["wifi", "kitchen"],
    }
    fields.update(overrides)
    return fields


async def make_listing(session: AsyncSession, *, host: User, **overrides: Any) -> Listing:
    return await listings_service.create_listing(
        session, host=host, fields=listing_fields(**overrides)
    )


async def add_photo(session: AsyncSession, listing: Listing, key: str) -> None:
    """A photo (a tiny upload stored under ``key``) first among the listing's photos."""
    upload = Upload(
        owner_id=listing.host_id, storage_key=f"{key}.jpg", thumbnail_key=f"{key}-t.jpg",
        content_type="image/jpeg", width=10, height=10, byte_size=1,
    )  # fmt: skip
    session.add(upload)
    await session.flush()
    session.add(ListingPhoto(listing_id=listing.id, upload_id=upload.id, position=0))


def new_booking(
    *,
    listing: Listing,
    guest: User,
    check_in: date,
    check_out: date,
    status: str = "CONFIRMED",
) -> Booking:
    """A booking at the listing's nightly price, not yet added to any session."""
    nights = (check_out - check_in).days
    return Booking(
        listing_id=listing.id,
        guest_id=guest.id,
        check_in=check_in,
        check_out=check_out,
        guests=1,
        status=status,
        currency=listing.currency,
        night_prices_minor=[listing.nightly_price_minor] * nights,
        cleaning_fee_minor=0,
        service_fee_minor=0,
        taxes_minor=0,
        total_minor=listing.nightly_price_minor * nights,
        cancellation_policy=listing.cancellation_policy,
        instant_book=listing.instant_book,
        starts_at=datetime.combine(check_in, time(15), UTC),
        ends_at=datetime.combine(check_out, time(11), UTC),
    )


async def make_booking(session: AsyncSession, **fields: Any) -> Booking:
    booking = new_booking(**fields)
    session.add(booking)
    await session.flush()
    return booking
