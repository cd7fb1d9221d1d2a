"""Listings, their money, places, photos, amenities and calendars, and search."""

from collections.abc import Awaitable, Iterable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Annotated, Final, Self

import strawberry
from strawberry import relay

from auth import rules
from db import states
from db.catalogue import AmenityCatalogue
from db.rows import AmenityRow, ListingRow, PhotoRow, UserRow
from gateways.storage import Storage
from resolvers.currency import converted_minor
from resolvers.permissions import can_see_listing, current_user
from schema.accounts import UserType
from schema.compiled import Loaded, reads_only_context
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from services.money import Money
from services.reviews import MIN_REVIEWS_FOR_RATING
from services.search import COUNT_CAP, Sort

if TYPE_CHECKING:
    from schema.calendar_sync import CalendarImportType
    from schema.reviews import RatingCategories, ReviewConnection


@strawberry.enum(description="What kind of place a listing is.")
class PropertyType(Enum):
    ENTIRE_PLACE = "ENTIRE_PLACE"
    PRIVATE_ROOM = "PRIVATE_ROOM"
    SHARED_ROOM = "SHARED_ROOM"
    HOTEL_ROOM = "HOTEL_ROOM"


# The states' own enums, registered with strawberry under these descriptions (registering
# returns the same class; names bound to a call's result would not read as types).
CancellationPolicy = states.CancellationPolicy
strawberry.enum(
    CancellationPolicy, description="How much a guest gets back on cancelling; see the README."
)
ListingStatus = states.ListingStatus
strawberry.enum(ListingStatus, description="Whether guests can find and book a listing.")
ListingModeration = states.ListingModeration
strawberry.enum(
    ListingModeration,
    description="Where a listing stands with the admins, apart from its status: only an "
    "APPROVED listing is in search and bookable (see the API guide).",
)
ListingSort = Sort
strawberry.enum(ListingSort, name="ListingSort", description="The order of search results.")


@strawberry.type(name="Money", description="An amount in a currency.")
class MoneyType:
    amount: Decimal = strawberry.field(description='Exact, as a string: "120.50".')
    currency: str = strawberry.field(description="ISO 4217 code.")
    formatted: str = strawberry.field(description='For display: "€120.50".')
    minor: strawberry.Private[int] = 0
    # The booking this is an amount of: converted at the rate frozen when its guest paid.
    booking_id: strawberry.Private[int | None] = None

    @classmethod
    def of(cls, minor: int, currency: str, *, booking_id: int | None = None) -> Self:
        amount, formatted = _amount_and_text(minor, currency)
        return cls(
            amount=amount,
            currency=currency,
            formatted=formatted,
            minor=minor,
            booking_id=booking_id,
        )

    @strawberry.field(
        description="For display only (money moves in `currency`): this amount in `to`, by "
        "default the viewer's preferred currency, at the day's exchange rate; a booking's "
        "amounts at the rate of the day its guest paid. Null when no rate is known."
    )
    async def converted(self, info: Info, to: str | None = None) -> "MoneyType | None":
        found = await converted_minor(
            info, minor=self.minor, currency=self.currency, to=to, booking_id=self.booking_id
        )
        return None if found is None else MoneyType.of(*found)


@lru_cache(maxsize=65_536)
def _amount_and_text(minor: int, currency: str) -> tuple[Decimal, str]:
    # Formatting through babel is slow next to the rest of a search row; prices repeat a lot.
    money = Money(minor, currency)
    return money.amount, money.formatted()


@strawberry.input(description="An amount in a currency.")
class MoneyInput:
    amount: Decimal
    currency: str = strawberry.field(description="ISO 4217 code, like EUR.")


@strawberry.type(description="Where a listing is.")
class Address:
    line1: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")


@strawberry.input(description="Where a listing is.")
class AddressInput:
    line1: str | None = None
    city: str
    region: str | None = None
    postal_code: str | None = None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, like PT.")


@strawberry.type(name="Amenity", description="Something a place offers.")
class AmenityType:
    code: str = strawberry.field(description='Stable code for filters, like "wifi".')
    name: str
    category: str


@lru_cache(maxsize=1_024)
def amenity_type(entry: AmenityRow) -> AmenityType:
    """The same read-only object for an amenity every time it is shown."""
    return AmenityType(code=entry.code, name=entry.name, category=entry.category)


@strawberry.type(description="A photo of a listing.")
class Photo:
    # Encoded only when asked for: a search page shows some 50 photos and none of their ids.
    id: strawberry.ID = strawberry.field(
        resolver=lambda self: strawberry.ID(relay.to_base64("Photo", self.photo_id))
    )
    url: str
    width: int | None
    height: int | None
    caption: str | None
    photo_id: strawberry.Private[int]


@strawberry.type(description="One night of a listing's calendar.")
class CalendarNight:
    date: date
    available: bool = strawberry.field(description="Free to book: not past, blocked or booked.")
    price: MoneyType = strawberry.field(description="The price of this night.")


@strawberry.type(name="Listing", description="A place to stay.")
class ListingType(relay.Node):
    # Every other field is read from the row when asked for: a listing is made from a row
    # twenty times a search page, which shows five of its columns' fields, and a page of
    # search results reads only the columns its fields need (LISTING_FIELD_COLUMNS).
    listing_id: relay.NodeID[int]
    _row: strawberry.Private[ListingRow]
    # Its host's row, when read with the listing's (a page of search results reads them in
    # its own statement): else the host is loaded by id.
    _host: strawberry.Private[UserRow | None] = None
    # Its photos, when read with it (like its host): else loaded by the listing's id.
    _photos: strawberry.Private[list[PhotoRow] | None] = None

    @strawberry.field
    def title(self) -> str:
        return self._row.title

    @strawberry.field
    def description(self) -> str:
        return self._row.description

    @strawberry.field
    def property_type(self) -> PropertyType:
        return _PROPERTY_TYPES[self._row.property_type]

    @strawberry.field
    def latitude(self) -> float:
        return self._row.latitude

    @strawberry.field
    def longitude(self) -> float:
        return self._row.longitude

    @strawberry.field
    def max_guests(self) -> int:
        return self._row.max_guests

    @strawberry.field
    def bedrooms(self) -> int:
        return self._row.bedrooms

    @strawberry.field
    def beds(self) -> int:
        return self._row.beds

    @strawberry.field
    def bathrooms(self) -> float:
        return float(self._row.bathrooms)

    @strawberry.field(
        description="Mean rating of the published, visible reviews of stays here; null until "
        "there are 3 of them."
    )
    def rating(self) -> float | None:
        return listing_rating(self._row)

    @strawberry.field(
        description="How many published, visible reviews of stays here count in the rating."
    )
    def review_count(self) -> int:
        return self._row.review_count

    @strawberry.field
    def instant_book(self) -> bool:
        return self._row.instant_book

    @strawberry.field
    def cancellation_policy(self) -> CancellationPolicy:
        return _CANCELLATION_POLICIES[self._row.cancellation_policy]

    @strawberry.field
    def min_nights(self) -> int:
        return self._row.min_nights

    @strawberry.field
    def max_nights(self) -> int | None:
        return self._row.max_nights

    @strawberry.field
    def status(self) -> ListingStatus:
        return _LISTING_STATUSES[self._row.status]

    @strawberry.field(description="IANA time zone where the listing is.")
    def time_zone(self) -> str:
        return self._row.time_zone

    @strawberry.field(description='Local time guests arrive from, "15:00".')
    def check_in_time(self) -> str:
        return _hours_and_minutes(self._row.check_in_time)

    @strawberry.field(description='Local time guests leave by, "11:00".')
    def check_out_time(self) -> str:
        return _hours_and_minutes(self._row.check_out_time)

    @strawberry.field
    def created_at(self) -> datetime:
        return self._row.created_at

    @strawberry.field(
        description="Its host and admins: APPROVED, PENDING_REVIEW (waiting for an admin) or "
        "FLAGGED (an admin found a problem; see moderationReason). Null for everyone else."
    )
    async def moderation(self, info: Info) -> ListingModeration | None:
        if not rules.can_see_moderation(await current_user(info), host_id=self._row.host_id):
            return None
        return ListingModeration(self._row.moderation)

    @strawberry.field(
        description="Its host and admins: why an admin flagged the listing; null otherwise."
    )
    async def moderation_reason(self, info: Info) -> str | None:
        if not rules.can_see_moderation(await current_user(info), host_id=self._row.host_id):
            return None
        return self._row.moderation_reason

    @strawberry.field(description="Where the listing is.")
    def address(self) -> Address:
        row = self._row
        return Address(
            line1=row.address_line1,
            city=row.city,
            region=row.region,
            postal_code=row.postal_code,
            country=row.country,
        )

    @strawberry.field(description="The price of a night, before per-night overrides.")
    def nightly_price(self) -> MoneyType:
        return MoneyType.of(self._row.nightly_price_minor, self._row.currency)

    @strawberry.field(description="Charged once a stay; null when there is none.")
    def cleaning_fee(self) -> MoneyType | None:
        fee = self._row.cleaning_fee_minor
        return MoneyType.of(fee, self._row.currency) if fee is not None else None

    @strawberry.field(description="The host.", graphql_type=UserType)
    @reads_only_context
    def host(self, info: Info) -> UserType | Loaded[UserRow | None, UserType]:
        if self._host is not None:
            return UserType.from_row(self._host)
        return Loaded(info.context.loaders.user_by_id.load(self._row.host_id), _host)

    @strawberry.field(
        description="Whether the signed-in viewer saved it in any of their wishlists; false "
        "when signed out."
    )
    async def saved_by_me(self, info: Info) -> bool:
        user_id = info.context.viewer.user_id
        if user_id is None:
            return False
        return await info.context.loaders.saved_by_user.load((user_id, self.listing_id))

    @strawberry.field(description="What the place offers.", graphql_type=list[AmenityType])
    @reads_only_context
    def amenities(self, info: Info) -> list[AmenityType] | Awaitable[list[AmenityType]]:
        # Synchronous once the catalogue is in memory: a coroutine a listing costs a page.
        amenities = info.context.services.amenities
        if (catalogue := amenities.loaded) is not None:
            return _amenities(catalogue, self._row.amenity_ids)
        return self._amenities_once_loaded(amenities)

    async def _amenities_once_loaded(self, amenities: AmenityCatalogue) -> list[AmenityType]:
        return _amenities(await amenities.by_id(), self._row.amenity_ids)

    @strawberry.field(description="Photos, in the host's order.", graphql_type=list[Photo])
    @reads_only_context
    def photos(self, info: Info) -> list[Photo] | Loaded[list[PhotoRow], list[Photo]]:
        if self._photos is not None:
            return _photos(info.context.services.storage, self._photos)
        return Loaded(
            info.context.loaders.photos_by_listing.load(self.listing_id),
            partial(_photos, info.context.services.storage),
        )

    @strawberry.field(
        description="Each night of [from, to): available or not, and its price (at most 366)."
    )
    async def calendar(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> list[CalendarNight]:
        # Imported here: the resolvers build this module's types, so they import it first.
        from resolvers.listings import calendar

        return await calendar(info, self._row, start=from_, end=to)

    @strawberry.field(
        description="Its host and admins: the secret URL of the listing's iCalendar feed of "
        "booked and closed nights, for other sites to import (rotateCalendarExportUrl makes a "
        "new one). Null for everyone else."
    )
    async def calendar_export_url(self, info: Info) -> str | None:
        from resolvers.listings import calendar_export_url

        return await calendar_export_url(info, self._row)

    @strawberry.field(
        description="Its host and admins: other sites' calendars the listing imports, oldest "
        "first. Null for everyone else."
    )
    async def calendar_imports(
        self, info: Info
    ) -> list[Annotated["CalendarImportType", strawberry.lazy("schema.calendar_sync")]] | None:
        from resolvers.listings import calendar_imports

        return await calendar_imports(info, self._row)

    @strawberry.field(
        description="Reviews of stays here, newest first: published ones, the viewer's own, "
        "and for admins hidden ones too (marked)."
    )
    async def reviews(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated["ReviewConnection", strawberry.lazy("schema.reviews")]:
        from resolvers.reviews import reviews_page

        return await reviews_page(
            info,
            kind=states.ReviewKind.GUEST_REVIEW,
            listing_id=self.listing_id,
            first=first,
            after=after,
        )

    @strawberry.field(description="The mean rating in each category of the reviews counted.")
    async def rating_categories(
        self, info: Info
    ) -> Annotated["RatingCategories", strawberry.lazy("schema.reviews")]:
        from resolvers.reviews import rating_categories

        return await rating_categories(info, self._row)

    @classmethod
    def from_row(
        cls, row: ListingRow, host: UserRow | None = None, photos: list[PhotoRow] | None = None
    ) -> Self:
        return cls(listing_id=row.id, _row=row, _host=host, _photos=photos)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # a hidden node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.listing_by_id.load_many([int(i) for i in node_ids])
        return [
            cls.from_row(row) if row is not None and await can_see_listing(info, row) else None
            for row in rows
        ]


# The columns of its row each field of a listing reads: a page of search results that asks
# only for these reads only their columns (see services.search.search_listings). A field not
# here may read any column: asking for one reads the whole row. Its test asks for each field
# of Listing by search and by id, and compares.
LISTING_FIELD_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "__typename": (),
    "id": ("id",),
    "title": ("title",),
    "description": ("description",),
    "propertyType": ("property_type",),
    "latitude": ("latitude",),
    "longitude": ("longitude",),
    "maxGuests": ("max_guests",),
    "bedrooms": ("bedrooms",),
    "beds": ("beds",),
    "bathrooms": ("bathrooms",),
    "rating": ("rating_avg", "review_count"),
    "reviewCount": ("review_count",),
    "instantBook": ("instant_book",),
    "cancellationPolicy": ("cancellation_policy",),
    "minNights": ("min_nights",),
    "maxNights": ("max_nights",),
    "status": ("status",),
    "timeZone": ("time_zone",),
    "checkInTime": ("check_in_time",),
    "checkOutTime": ("check_out_time",),
    "createdAt": ("created_at",),
    "address": ("address_line1", "city", "region", "postal_code", "country"),
    "nightlyPrice": ("nightly_price_minor", "currency"),
    "cleaningFee": ("cleaning_fee_minor", "currency"),
    "host": ("host_id",),
    "photos": ("id",),
    "amenities": ("amenity_ids",),
}


def listing_columns(fields: Iterable[str]) -> frozenset[str] | None:
    """The columns a listing's ``fields`` read; None when one of them may read any."""
    columns: set[str] = set()
    for name in fields:
        read = LISTING_FIELD_COLUMNS.get(name)
        if read is None:
            return None
        columns.update(read)
    return frozenset(columns)


# A listing's columns to its fields by lookups: calling an enum class, or strftime, costs many
# times what reading a column does, twenty times a search page.
_PROPERTY_TYPES = {member.value: member for member in PropertyType}
_CANCELLATION_POLICIES = {member.value: member for member in CancellationPolicy}
_LISTING_STATUSES = {member.value: member for member in ListingStatus}


@lru_cache(maxsize=256)
def _hours_and_minutes(moment: time) -> str:
    return moment.strftime("%H:%M")


def _host(user: UserRow | None) -> UserType:
    if user is None:
        raise LookupError("a listing's host has no user row")
    return UserType.from_row(user)


def _amenities(catalogue: dict[int, AmenityRow], amenity_ids: list[int]) -> list[AmenityType]:
    types = _amenity_types(catalogue)
    return [types[amenity_id] for amenity_id in amenity_ids if amenity_id in types]


# The catalogue's entries as types, for the catalogue last shown (it does not change while
# Roost runs): a search page shows some 270 amenities.
_shown: tuple[dict[int, AmenityRow], dict[int, AmenityType]] | None = None


def _amenity_types(catalogue: dict[int, AmenityRow]) -> dict[int, AmenityType]:
    global _shown
    if _shown is None or _shown[0] is not catalogue:
        _shown = (catalogue, {key: amenity_type(entry) for key, entry in catalogue.items()})
    return _shown[1]


def _photos(storage: Storage, rows: list[PhotoRow]) -> list[Photo]:
    return [
        Photo(
            photo_id=row.id,
            url=storage.url(row.storage_key),
            width=row.width,
            height=row.height,
            caption=row.caption,
        )
        for row in rows
    ]


def listing_rating(row: ListingRow) -> float | None:
    """What guests see of a listing's rating: null below the reviews needed to show one."""
    if row.rating_avg is None or row.review_count < MIN_REVIEWS_FOR_RATING:
        return None
    return float(row.rating_avg)


@strawberry.type(description="A listing in a list, with the cursor to continue after it.")
class ListingEdge(Edge[ListingType]):
    pass


@strawberry.type(description="A page of listings.")
class ListingConnection(Connection[ListingEdge]):
    total_count: int = total_count(
        f"How many listings match in all. searchListings counts exactly up to {COUNT_CAP:,}"
        f" matches; past that it answers {COUNT_CAP:,} and totalCountIsExact is false."
    )
    total_count_is_exact: bool = strawberry.field(
        default=True,
        description=(
            "Whether totalCount is the exact number of matches. False only when searchListings"
            f" stopped counting at {COUNT_CAP:,}: there are more, so show"
            f' "{COUNT_CAP:,}+ places". The other lists of listings always count them all.'
        ),
    )


@strawberry.input(description="A photo for a listing, with its caption.")
class PhotoInput:
    upload_id: strawberry.ID = strawberry.field(description="An id from POST /uploads.")
    caption: str | None = None


@strawberry.input(description="A new listing.")
class CreateListingInput:
    title: str
    description: str
    property_type: PropertyType
    address: AddressInput
    latitude: float
    longitude: float
    max_guests: int
    bedrooms: int
    beds: int
    bathrooms: float
    nightly_price: MoneyInput
    cleaning_fee: MoneyInput | None = None
    amenities: list[str] = strawberry.field(
        default_factory=list, description='Amenity codes, like "wifi", "pool".'
    )
    instant_book: bool = True
    cancellation_policy: CancellationPolicy = CancellationPolicy.MODERATE
    min_nights: int = 1
    max_nights: int | None = None
    photo_upload_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Ids from POST /uploads, in display order."
    )
    photos: list[PhotoInput] | None = strawberry.field(
        default=None, description="Photos with captions, in order; replaces photoUploadIds."
    )
    publish: bool = True
    time_zone: str | None = strawberry.field(
        default=None, description="IANA zone; found from the coordinates when left out."
    )
    check_in_time: str | None = strawberry.field(
        default=None, description='Local time guests may arrive from, "15:00" by default.'
    )
    check_out_time: str | None = strawberry.field(
        default=None, description='Local time guests leave by, "11:00" by default.'
    )


@strawberry.input(description="Changes to a listing; fields left out stay as they are.")
class UpdateListingInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    property_type: PropertyType | None = strawberry.UNSET
    address: AddressInput | None = strawberry.UNSET
    latitude: float | None = strawberry.UNSET
    longitude: float | None = strawberry.UNSET
    max_guests: int | None = strawberry.UNSET
    bedrooms: int | None = strawberry.UNSET
    beds: int | None = strawberry.UNSET
    bathrooms: float | None = strawberry.UNSET
    nightly_price: MoneyInput | None = strawberry.UNSET
    cleaning_fee: MoneyInput | None = strawberry.UNSET
    amenities: list[str] | None = strawberry.UNSET
    instant_book: bool | None = strawberry.UNSET
    cancellation_policy: CancellationPolicy | None = strawberry.UNSET
    min_nights: int | None = strawberry.UNSET
    max_nights: int | None = strawberry.UNSET
    photo_upload_ids: list[strawberry.ID] | None = strawberry.UNSET
    photos: list[PhotoInput] | None = strawberry.UNSET
    publish: bool | None = strawberry.UNSET
    time_zone: str | None = strawberry.UNSET
    check_in_time: str | None = strawberry.UNSET
    check_out_time: str | None = strawberry.UNSET


@strawberry.input(description="A circle on the map.")
class GeoInput:
    latitude: float
    longitude: float
    radius_km: float


@strawberry.input(description="What a guest is looking for; every field narrows the results.")
class ListingFilter:
    location: str | None = strawberry.field(
        default=None, description="Free text matching city, region, country and title."
    )
    near: GeoInput | None = None
    check_in: date | None = strawberry.field(
        default=None, description="With checkOut: only listings free for every night."
    )
    check_out: date | None = None
    guests: int | None = None
    min_price: Decimal | None = strawberry.field(
        default=None, description="Per night, in `currency`."
    )
    max_price: Decimal | None = None
    currency: str | None = strawberry.field(
        default=None, description="Default: the viewer's preferred currency, else USD."
    )
    amenities: list[str] | None = strawberry.field(
        default=None, description="The listing has all of them."
    )
    property_types: list[PropertyType] | None = None
    instant_book: bool | None = None
