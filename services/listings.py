"""Listings: what a host publishes, checked field by field, and its calendar."""

import math
import unicodedata
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth import rules
from db.calendar import blocked_nights, overlapping_stays
from db.catalogue import amenity_ids_by_code
from db.models import (
    BlockedNight,
    Booking,
    CalendarImport,
    Listing,
    ListingPhoto,
    NightPrice,
    Upload,
)
from db.rows import Actor, ListingRow
from db.states import ListingStatus
from services import audit, moderation
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.exchange_rates import usd_per_minor_unit, usd_per_unit
from services.money import to_minor
from services.validation import FieldErrors, has_control_characters, time_zone_problem

MAX_CALENDAR_NIGHTS = 366
MAX_PHOTOS = 50
MAX_CAPTION = 200
MAX_AMENITIES = 80
MAX_USD_PRICE = 100_000  # the most a night, or a cleaning, may cost
_TEXT_LIMITS = {
    "title": 120,
    "description": 5_000,
    "address.line1": 200,
    "address.city": 100,
    "address.region": 100,
    "address.postalCode": 20,
}
_COUNT_LIMITS = {
    "max_guests": ("maxGuests", 1, 50),
    "bedrooms": ("bedrooms", 0, 50),
    "beds": ("beds", 0, 100),
    "min_nights": ("minNights", 1, 365),
}
_NOT_NULL = {
    "property_type": "propertyType",
    "cancellation_policy": "cancellationPolicy",
    "instant_book": "instantBook",
    "address": "address",
    "nightly_price": "nightlyPrice",
    "amenities": "amenities",
}
_NOT_A_COUNTRY = frozenset({"EU", "EZ", "UN", "QO", "ZZ"})


@cache
def country_names() -> dict[str, str]:
    return {
        code: name
        for code, name in Locale("en").territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_A_COUNTRY
    }


@cache
def _time_zone_finder() -> Any:
    from timezonefinder import TimezoneFinder  # 30 MB of borders: loaded on first use

    return TimezoneFinder()


def time_zone_at(latitude: float, longitude: float) -> str:
    return _time_zone_finder().timezone_at(lat=latitude, lng=longitude) or "UTC"


def normalize_search_text(*parts: str | None) -> str:
    """Lower case without accents: what text search compares, on both sides."""
    text = " ".join(part for part in parts if part)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_text(*, city: str, region: str | None, country: str | None, title: str) -> str:
    """What free-text search matches a listing on: its place (the country by name and code)
    and its title."""
    return normalize_search_text(city, region, country_names().get(country or ""), country, title)


def _clean_text(value: object, field: str, errors: FieldErrors, *, required: bool) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        if required:
            errors.check(field, "must not be empty")
        return None
    limit = _TEXT_LIMITS[field]
    if len(text) > limit:
        errors.check(field, f"must be at most {limit} characters long")
    if has_control_characters(text, allow_newlines=field == "description"):
        errors.check(field, "must not contain control characters")
    return text


class _Draft:
    """The listing as the input would leave it. Checked values wait here and reach the tracked
    ORM object only when every check passed: a query made while checking (amenities, photos,
    rates) autoflushes the session, and must never send a refused value to the database."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self.values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.values[name] if name in self.values else getattr(self.listing, name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.values[name] = value

    def apply(self) -> None:
        for name, value in self.values.items():
            setattr(self.listing, name, value)


async def _check(
    session: AsyncSession,
    draft: _Draft,
    fields: Mapping[str, Any],
    errors: FieldErrors,
) -> list[int] | None:
    """Checks the given fields into ``draft``; answers photo upload ids to attach."""
    for field in ("title", "description"):
        if field in fields:
            draft[field] = _clean_text(fields[field], field, errors, required=True)
    for field, api_name in _NOT_NULL.items():
        if field in fields and fields[field] is None:
            errors.check(api_name, "must not be null")
    for field in ("property_type", "cancellation_policy", "instant_book"):
        if fields.get(field) is not None:
            draft[field] = fields[field]

    if (address := fields.get("address")) is not None:
        draft["address_line1"] = _clean_text(
            address.get("line1"), "address.line1", errors, required=False
        )
        draft["city"] = _clean_text(address.get("city"), "address.city", errors, required=True)
        draft["region"] = _clean_text(
            address.get("region"), "address.region", errors, required=False
        )
        draft["postal_code"] = _clean_text(
            address.get("postal_code"), "address.postalCode", errors, required=False
        )
        country = str(address.get("country") or "").strip().upper()
        if country not in country_names():
            errors.check("address.country", "must be an ISO 3166-1 alpha-2 code, like PT")
        draft["country"] = country

    for field, api_name, low, high in (
        ("latitude", "latitude", -90.0, 90.0),
        ("longitude", "longitude", -180.0, 180.0),
    ):
        if field in fields:
            value = fields[field]
            if value is None or not math.isfinite(value) or not low <= value <= high:
                errors.check(api_name, f"must be between {low:g} and {high:g}")
            else:
                draft[field] = float(value)

    for field, (api_name, low, high) in _COUNT_LIMITS.items():
        if field in fields:
            value = fields[field]
            if value is None or not low <= value <= high:
                errors.check(api_name, f"must be between {low} and {high}")
            else:
                draft[field] = value
    if "bathrooms" in fields:
        bathrooms = fields["bathrooms"]
        if (
            bathrooms is None
            or not math.isfinite(bathrooms)
            or not 0 <= bathrooms <= 50
            or (bathrooms * 2) % 1
        ):
            errors.check("bathrooms", "must be between 0 and 50, in halves")
        else:
            draft["bathrooms"] = Decimal(str(bathrooms))
    if "max_nights" in fields:
        max_nights = fields["max_nights"]
        if max_nights is not None and not 1 <= max_nights <= 365:
            errors.check("maxNights", "must be between 1 and 365")
        else:
            draft["max_nights"] = max_nights
    if (
        draft["max_nights"] is not None
        and draft["min_nights"] is not None
        and draft["max_nights"] < draft["min_nights"]
    ):
        errors.check("maxNights", "must not be below minNights")

    await _check_prices(session, draft, fields, errors)

    if "amenities" in fields:
        codes = list(dict.fromkeys(fields["amenities"] or []))
        known = await amenity_ids_by_code(session)
        unknown = [code for code in codes if code not in known]
        if unknown:
            errors.check("amenities", f"unknown amenities: {', '.join(unknown[:10])}")
        elif len(codes) > MAX_AMENITIES:
            errors.check("amenities", f"at most {MAX_AMENITIES}")
        else:
            draft["amenity_ids"] = sorted(known[code] for code in codes)

    if "time_zone" in fields and fields["time_zone"] is not None:
        problem = time_zone_problem(fields["time_zone"])
        errors.check("timeZone", problem)
        if problem is None:
            draft["time_zone"] = fields["time_zone"]
    elif "latitude" in fields or "longitude" in fields:
        if draft["latitude"] is not None and draft["longitude"] is not None:
            draft["time_zone"] = time_zone_at(draft["latitude"], draft["longitude"])

    for field, api_name in (("check_in_time", "checkInTime"), ("check_out_time", "checkOutTime")):
        if fields.get(field) is not None:
            try:
                at = time.fromisoformat(fields[field])
            except ValueError:
                at = None
            if at is None or at.tzinfo is not None:
                errors.check(api_name, 'must be a time of day, like "15:00"')
            else:
                draft[field] = at

    photo_ids = None
    if "photo_upload_ids" in fields:
        photo_ids = list(dict.fromkeys(fields["photo_upload_ids"] or []))
        captions = [caption for caption in fields.get("photo_captions") or [] if caption]
        if any(len(caption) > MAX_CAPTION for caption in captions):
            errors.check("photos", f"captions are at most {MAX_CAPTION} characters long")
        elif any(has_control_characters(caption, allow_newlines=True) for caption in captions):
            errors.check("photos", "captions must not contain control characters")
        if len(photo_ids) > MAX_PHOTOS:
            errors.check("photoUploadIds", f"at most {MAX_PHOTOS} photos")
        elif photo_ids:
            owned = set(
                await session.scalars(
                    select(Upload.id).where(
                        Upload.id.in_(photo_ids), Upload.owner_id == draft["host_id"]
                    )
                )
            )
            if owned != set(photo_ids):
                errors.check("photoUploadIds", "may only name uploads of the listing's host")

    if draft["city"] is not None and draft["title"] is not None:
        draft["search_text"] = search_text(
            city=draft["city"],
            region=draft["region"],
            country=draft["country"],
            title=draft["title"],
        )
    return photo_ids


def _too_much(amount: Decimal, rate: Decimal) -> bool:
    return amount * rate > MAX_USD_PRICE


async def _check_prices(
    session: AsyncSession, draft: _Draft, fields: Mapping[str, Any], errors: FieldErrors
) -> None:
    currency = draft["currency"]
    rate = None
    price = fields.get("nightly_price")
    if price is not None:
        currency = str(price["currency"]).upper()
        rate = await usd_per_unit(session, currency)
        if rate is None:
            errors.check("nightlyPrice.currency", "is not a currency Roost prices in")
        else:
            try:
                minor = to_minor(price["amount"], currency)
            except ValueError as problem:
                errors.check("nightlyPrice.amount", str(problem))
            else:
                if minor <= 0:
                    errors.check("nightlyPrice.amount", "must be more than zero")
                elif _too_much(Decimal(price["amount"]), rate):
                    errors.check("nightlyPrice.amount", "is more than Roost allows a night")
                else:
                    draft["currency"], draft["nightly_price_minor"] = currency, minor
                    # What price filters and sorts compare, at today's rate.
                    draft["nightly_price_usd"] = minor * usd_per_minor_unit(currency, rate)
    fee = fields.get("cleaning_fee", draft["cleaning_fee_minor"] and "unchanged")
    if fee is None:
        draft["cleaning_fee_minor"] = None
    elif isinstance(fee, Mapping):
        if str(fee["currency"]).upper() != currency:
            errors.check("cleaningFee.currency", "must be the currency of the nightly price")
        elif currency is not None:
            try:
                fee_minor = to_minor(fee["amount"], currency)
            except ValueError as problem:
                errors.check("cleaningFee.amount", str(problem))
            else:
                if rate is None:
                    rate = await usd_per_unit(session, currency)
                if fee_minor < 0:
                    errors.check("cleaningFee.amount", "must not be negative")
                elif rate is not None and _too_much(Decimal(fee["amount"]), rate):
                    errors.check("cleaningFee.amount", "is more than Roost allows")
                else:
                    draft["cleaning_fee_minor"] = fee_minor
    elif fee == "unchanged" and currency != draft.listing.currency:
        # The stored fee counts minor units of the old currency: kept, it would mean another sum.
        errors.check("cleaningFee", "give it again in the new currency")


def _photos(upload_ids: list[int], fields: Mapping[str, Any]) -> list[tuple[int, str | None]]:
    """These uploads, in this order, each with its caption."""
    # Captions come only with `photos`; `photoUploadIds: null` (no photos) has none.
    given = fields.get("photo_captions") or []
    captions = {
        upload_id: (caption or "").strip() or None
        for upload_id, caption in zip(fields.get("photo_upload_ids") or [], given, strict=False)
    }
    return [(upload_id, captions.get(upload_id)) for upload_id in upload_ids]


async def _photos_differ(
    session: AsyncSession, listing_id: int, upload_ids: list[int], fields: Mapping[str, Any]
) -> bool:
    current = await session.execute(
        select(ListingPhoto.upload_id, ListingPhoto.caption)
        .where(ListingPhoto.listing_id == listing_id)
        .order_by(ListingPhoto.position)
    )
    return [tuple(row) for row in current] != _photos(upload_ids, fields)


async def _replace_photos(
    session: AsyncSession, listing_id: int, upload_ids: list[int], fields: Mapping[str, Any]
) -> None:
    """The listing's photos become these uploads, in this order, with their captions."""
    await session.execute(delete(ListingPhoto).where(ListingPhoto.listing_id == listing_id))
    session.add_all(
        ListingPhoto(listing_id=listing_id, upload_id=upload_id, position=position, caption=caption)
        for position, (upload_id, caption) in enumerate(_photos(upload_ids, fields))
    )


_REQUIRED_ON_CREATE = {
    "title": "title",
    "description": "description",
    "property_type": "propertyType",
    "address": "address",
    "latitude": "latitude",
    "longitude": "longitude",
    "max_guests": "maxGuests",
    "bedrooms": "bedrooms",
    "beds": "beds",
    "bathrooms": "bathrooms",
    "nightly_price": "nightlyPrice",
}


async def create_listing(
    session: AsyncSession,
    *,
    host: Actor,
    fields: Mapping[str, Any],
    moderation_on: bool = False,
    now: datetime | None = None,
) -> Listing:
    """A new listing; published at once unless ``publish`` is false, when it waits for an
    admin's review if ``moderation_on`` (services/moderation.py)."""
    errors = FieldErrors()
    for field, api_name in _REQUIRED_ON_CREATE.items():
        if fields.get(field) is None:
            errors.check(api_name, "is required")
    listing = Listing(
        host_id=host.id,
        amenity_ids=[],
        min_nights=1,
        instant_book=True,
        cancellation_policy="MODERATE",
        review_count=0,
    )
    draft = _Draft(listing)
    photo_ids = await _check(session, draft, {"min_nights": 1, **fields}, errors)
    if errors:
        raise InvalidInput(fields=errors)
    draft.apply()
    listing.status = ListingStatus.PUBLISHED if fields.get("publish", True) else ListingStatus.DRAFT
    moderation.after_create(listing, moderation_on=moderation_on, now=now or datetime.now(UTC))
    session.add(listing)
    await session.flush()
    if photo_ids:
        await _replace_photos(session, listing.id, photo_ids, fields)
    await session.flush()
    return listing


async def get_for_change(session: AsyncSession, *, actor: Actor, listing_id: int) -> Listing:
    """The listing, locked for the change, when ``actor`` is its host or an admin."""
    listing = await session.scalar(
        select(Listing)
        .where(Listing.id == listing_id, Listing.deleted_at.is_(None))
        .with_for_update()
    )
    if listing is None:
        raise NotFound("No such listing.")
    if not rules.can_change_listing(actor, host_id=listing.host_id):
        raise Forbidden("Only the listing's host or an admin can change it.")
    return listing


async def update_listing(
    session: AsyncSession,
    *,
    actor: Actor,
    listing_id: int,
    fields: Mapping[str, Any],
    moderation_on: bool = False,
    now: datetime | None = None,
) -> Listing:
    """Changes the given fields; a change of content may send the listing for an admin's
    review (services/moderation.py), the more so when ``moderation_on``."""
    listing = await get_for_change(session, actor=actor, listing_id=listing_id)
    status_before = listing.status
    errors = FieldErrors()
    draft = _Draft(listing)
    photo_ids = await _check(session, draft, fields, errors)
    if "publish" in fields and fields["publish"] is not None:
        if not rules.can_publish_listing(actor, status=listing.status):
            errors.check("publish", "a suspended listing can only be republished by an admin")
        elif fields["publish"]:
            draft["status"] = ListingStatus.PUBLISHED
        elif listing.status == ListingStatus.PUBLISHED:
            draft["status"] = ListingStatus.UNLISTED
    if errors:
        raise InvalidInput(fields=errors)
    content_changed = any(
        name in moderation.REVIEWED_FIELDS and value != getattr(listing, name)
        for name, value in draft.values.items()
    ) or (photo_ids is not None and await _photos_differ(session, listing.id, photo_ids, fields))
    draft.apply()
    moderation.after_change(
        listing,
        actor=actor,
        moderation_on=moderation_on,
        status_before=status_before,
        content_changed=content_changed,
        now=now or datetime.now(UTC),
    )
    if photo_ids is not None:
        await _replace_photos(session, listing.id, photo_ids, fields)
    await session.flush()
    return listing


async def delete_listing(session: AsyncSession, *, actor: Actor, listing_id: int) -> None:
    listing = await get_for_change(session, actor=actor, listing_id=listing_id)
    listing.deleted_at = datetime.now(UTC)
    await session.flush()


# The calendar.


def _check_range(start: date, end: date) -> list[date]:
    if end <= start:
        raise InvalidInput.field("to", "must be after from")
    nights = (end - start).days
    if nights > MAX_CALENDAR_NIGHTS:
        raise InvalidInput.field("to", f"at most {MAX_CALENDAR_NIGHTS} nights at a time")
    return [start + timedelta(days=offset) for offset in range(nights)]


async def _refuse_booked(session: AsyncSession, listing_id: int, start: date, end: date) -> None:
    if await session.scalar(select(overlapping_stays(listing_id, start, end).exists())):
        raise Conflict("Some of these nights are booked.")


async def block_nights(
    session: AsyncSession, *, actor: Actor, listing_id: int, start: date, end: date
) -> None:
    nights = _check_range(start, end)
    await get_for_change(session, actor=actor, listing_id=listing_id)
    await _refuse_booked(session, listing_id, start, end)
    # The host's from now on, nights an imported calendar closed too: they stay closed when
    # that calendar frees them.
    statement = insert(BlockedNight).values(
        [{"listing_id": listing_id, "night": night} for night in nights]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[BlockedNight.listing_id, BlockedNight.night],
            set_={"import_id": None},
            where=BlockedNight.import_id.is_not(None),
        )
    )


async def unblock_nights(
    session: AsyncSession, *, actor: Actor, listing_id: int, start: date, end: date
) -> None:
    """Opens the nights of [start, end) the host closed; those an imported calendar still
    shows stay closed, by that calendar (services/calendar_imports.py)."""
    nights = _check_range(start, end)
    await get_for_change(session, actor=actor, listing_id=listing_id)
    await _refuse_booked(session, listing_id, start, end)
    await session.execute(
        delete(BlockedNight).where(
            BlockedNight.listing_id == listing_id,
            BlockedNight.night >= start,
            BlockedNight.night < end,
        )
    )
    await hand_back(session, listing_id=listing_id, nights=nights)


async def hand_back(session: AsyncSession, *, listing_id: int, nights: Collection[date]) -> None:
    """Closes again those of ``nights`` (just opened, the listing locked) that one of the
    listing's imported calendars still shows, as that calendar's."""
    if not nights:
        return
    shown = (
        select(
            CalendarImport.id.label("import_id"),
            func.unnest(CalendarImport.wanted).label("night"),
        )
        .where(CalendarImport.listing_id == listing_id)
        .subquery()
    )
    await session.execute(
        insert(BlockedNight)
        .from_select(
            ["listing_id", "night", "import_id"],
            select(literal(listing_id), shown.c.night, shown.c.import_id).where(
                shown.c.night.in_(list(nights))
            ),
        )
        .on_conflict_do_nothing()
    )


async def calendar(
    session: AsyncSession, *, listing: ListingRow, start: date, end: date
) -> list[tuple[date, bool, int]]:
    """Each night of [start, end): whether it can be booked, and its price in minor units."""
    nights = _check_range(start, end)
    blocked = set(await session.scalars(blocked_nights(listing.id, start, end)))
    stays = (
        await session.execute(
            overlapping_stays(listing.id, start, end).with_only_columns(
                Booking.check_in, Booking.check_out
            )
        )
    ).all()
    overrides = await session.execute(
        select(NightPrice.night, NightPrice.price_minor).where(
            NightPrice.listing_id == listing.id,
            NightPrice.night >= start,
            NightPrice.night < end,
        )
    )
    prices = dict(overrides.all())
    today = datetime.now(ZoneInfo(listing.time_zone)).date()
    return [
        (
            night,
            night >= today
            and night not in blocked
            and not any(check_in <= night < check_out for check_in, check_out in stays),
            prices.get(night, listing.nightly_price_minor),
        )
        for night in nights
    ]


async def set_night_prices(
    session: AsyncSession,
    *,
    actor: Actor,
    listing_id: int,
    start: date,
    end: date,
    amount: Decimal | None,
) -> None:
    """Overrides the nightly price of [start, end); None returns those nights to the base price."""
    nights = _check_range(start, end)
    listing = await get_for_change(session, actor=actor, listing_id=listing_id)
    await session.execute(
        delete(NightPrice).where(
            NightPrice.listing_id == listing_id, NightPrice.night >= start, NightPrice.night < end
        )
    )
    if amount is None:
        return
    try:
        minor = to_minor(amount, listing.currency)
    except ValueError as problem:
        raise InvalidInput.field("amount", str(problem)) from None
    if minor <= 0:
        raise InvalidInput.field("amount", "must be more than zero")
    await session.execute(
        insert(NightPrice).values(
            [{"listing_id": listing_id, "night": night, "price_minor": minor} for night in nights]
        )
    )


# Admins take a listing off the platform, and put it back.

MAX_SUSPEND_REASON = 500


async def suspend(
    session: AsyncSession, *, admin: Actor, listing_id: int, reason: str, now: datetime
) -> Listing:
    """Out of search and unbookable at once; only an admin puts it back (its host cannot
    republish it). Stays already booked are left to the admins' own cancellations."""
    if not rules.is_admin(admin):
        raise Forbidden("Only admins can suspend listings.")
    text = reason.strip()
    if not 1 <= len(text) <= MAX_SUSPEND_REASON or has_control_characters(text):
        raise InvalidInput.field(
            "reason", f"must be 1 to {MAX_SUSPEND_REASON} characters of plain text"
        )
    listing = await get_for_change(session, actor=admin, listing_id=listing_id)
    if listing.status == ListingStatus.SUSPENDED:
        raise Conflict("This listing is suspended already.")
    before = listing.status
    listing.status = ListingStatus.SUSPENDED
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="listing.suspend",
        subject=("Listing", listing.id),
        before={"status": before},
        after={"status": listing.status},
        reason=text,
        now=now,
    )
    return listing


async def restore(
    session: AsyncSession, *, admin: Actor, listing_id: int, now: datetime
) -> Listing:
    """A suspended listing published again."""
    if not rules.is_admin(admin):
        raise Forbidden("Only admins can restore listings.")
    listing = await get_for_change(session, actor=admin, listing_id=listing_id)
    if listing.status != ListingStatus.SUSPENDED:
        raise Conflict("This listing is not suspended.")
    listing.status = ListingStatus.PUBLISHED
    await session.flush()
    await audit.record(
        session,
        actor_id=admin.id,
        action="listing.restore",
        subject=("Listing", listing.id),
        before={"status": ListingStatus.SUSPENDED},
        after={"status": listing.status},
        now=now,
    )
    return listing
