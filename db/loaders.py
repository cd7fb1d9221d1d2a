"""Per-request dataloaders: batched reads, answered in key order, as rows (db/rows.py).

They run on every search page, so they send fixed SQL through asyncpg (db/raw.py).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Protocol, TypeVar

from aiodataloader import DataLoader

from db.database import Database
from db.raw import Record, fetch
from db.rows import (
    BookingRow,
    LedgerRow,
    ListingRow,
    MessageRow,
    MessageThreadRow,
    PaymentRow,
    PayoutRow,
    PhotoRow,
    ReviewRow,
    UserRow,
    columns,
)
from db.states import LIVE_PAYMENT, OperationStatus, sql_list

# Each select list is its row's fields, in order (the rows' own names, never input).
USERS_BY_ID = f"""
SELECT {columns(UserRow._fields, "u", avatar_thumbnail_key="a.thumbnail_key")}
FROM user_account u LEFT JOIN upload a ON a.id = u.avatar_upload_id
WHERE u.id = ANY($1::bigint[])
"""
LISTING_SELECT = columns(ListingRow._fields, "l")
LISTINGS_BY_ID = f"SELECT {LISTING_SELECT} FROM listing l WHERE l.id = ANY($1::bigint[])"
PHOTOS_BY_LISTING = """
SELECT f.id, f.listing_id, f.caption, u.storage_key, u.width, u.height
FROM listing_photo f JOIN upload u ON u.id = f.upload_id
WHERE f.listing_id = ANY($1::bigint[])
ORDER BY f.listing_id, f.position
"""
BOOKINGS_BY_ID = (
    f"SELECT {columns(BookingRow._fields, 'b')} FROM booking b WHERE b.id = ANY($1::bigint[])"
)
PAYMENTS_BY_ID = (
    f"SELECT {columns(PaymentRow._fields, 'p')} FROM payment p WHERE p.id = ANY($1::bigint[])"
)
# A booking's payment: the live one, else the latest attempt.
PAYMENTS_BY_BOOKING = f"""
SELECT DISTINCT ON (p.booking_id) {columns(PaymentRow._fields, "p")}
FROM payment p WHERE p.booking_id = ANY($1::bigint[])
ORDER BY p.booking_id, p.status NOT IN ({sql_list(LIVE_PAYMENT)}), p.id DESC
"""
# A booking has at most one payout (a unique booking_id).
PAYOUTS_BY_BOOKING = (
    f"SELECT {columns(PayoutRow._fields, 'o')} FROM payout o WHERE o.booking_id = ANY($1::bigint[])"
)
REVIEWS_BY_ID = (
    f"SELECT {columns(ReviewRow._fields, 'r')} FROM review r WHERE r.id = ANY($1::bigint[])"
)
THREADS_BY_ID = (
    f"SELECT {columns(MessageThreadRow._fields, 't')} FROM message_thread t "
    "WHERE t.id = ANY($1::bigint[])"
)
MESSAGES_BY_ID = (
    f"SELECT {columns(MessageRow._fields, 'm')} FROM message m WHERE m.id = ANY($1::bigint[])"
)
# Each thread's newest message, one index probe a thread.
LAST_MESSAGE_BY_THREAD = f"""
SELECT {columns(MessageRow._fields, "m")}
FROM unnest($1::bigint[]) AS t(id)
CROSS JOIN LATERAL (
    SELECT * FROM message WHERE thread_id = t.id ORDER BY created_at DESC, id DESC LIMIT 1
) m
"""
# A listing's sums, for its category averages.
RATINGS_BY_LISTING = "SELECT * FROM listing_rating WHERE listing_id = ANY($1::bigint[])"

USD_PER_UNIT = "SELECT currency, usd_per_unit FROM exchange_rate WHERE currency = ANY($1::text[])"
# What the provider confirmed of each payment, in the order it happened.
LEDGER_BY_PAYMENT = f"""
SELECT {columns(LedgerRow._fields, "o")} FROM payment_operation o
WHERE o.payment_id = ANY($1::bigint[]) AND o.status = '{OperationStatus.SUCCEEDED}'
ORDER BY o.payment_id, o.completed_at, o.id
"""
# Which (user, listing) pairs a user saved in any of their wishlists.
SAVED_BY_USER = """
SELECT DISTINCT k.user_id, k.listing_id
FROM unnest($1::bigint[], $2::bigint[]) AS k(user_id, listing_id)
WHERE EXISTS (
    SELECT 1 FROM wishlist_item i WHERE i.user_id = k.user_id AND i.listing_id = k.listing_id
)
"""


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_Identified)


class RowByIdLoader(DataLoader[int, RowT | None]):
    """Rows by id; None for an id that matches none."""

    def __init__(self, database: Database, sql: str, make: Callable[[Record], RowT]) -> None:
        super().__init__()
        self.database = database
        self.sql = sql
        self.make = make

    async def load_existing(self, key: int) -> RowT:
        """The row of an id that must match one: a foreign key's, or a row just written."""
        row = await self.load(key)
        if row is None:
            raise LookupError(f"no row has the id {key}")
        return row

    async def batch_load_fn(self, ids: Sequence[int]) -> list[RowT | None]:
        records = await fetch(self.database, self.sql, list(ids))
        by_id = {row.id: row for row in map(self.make, records)}
        return [by_id.get(key) for key in ids]


class PaymentByBookingLoader(DataLoader[int, PaymentRow | None]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, booking_ids: Sequence[int]) -> list[PaymentRow | None]:
        records = await fetch(self.database, PAYMENTS_BY_BOOKING, list(booking_ids))
        by_booking = {row.booking_id: row for row in map(PaymentRow._make, records)}
        return [by_booking.get(booking_id) for booking_id in booking_ids]


class PayoutByBookingLoader(DataLoader[int, PayoutRow | None]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, booking_ids: Sequence[int]) -> list[PayoutRow | None]:
        records = await fetch(self.database, PAYOUTS_BY_BOOKING, list(booking_ids))
        by_booking = {row.booking_id: row for row in map(PayoutRow._make, records)}
        return [by_booking.get(booking_id) for booking_id in booking_ids]


class PhotosByListingLoader(DataLoader[int, list[PhotoRow]]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, listing_ids: Sequence[int]) -> list[list[PhotoRow]]:
        by_listing: dict[int, list[PhotoRow]] = defaultdict(list)
        for record in await fetch(self.database, PHOTOS_BY_LISTING, list(listing_ids)):
            photo = PhotoRow._make(record)
            by_listing[photo.listing_id].append(photo)
        return [by_listing.get(listing_id, []) for listing_id in listing_ids]


class UsdPerUnitLoader(DataLoader[str, Decimal | None]):
    """What a unit of each currency is worth in US dollars; None: no rate is known."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, currencies: Sequence[str]) -> list[Decimal | None]:
        records = await fetch(self.database, USD_PER_UNIT, list(currencies))
        rates: dict[str, Decimal] = {
            record["currency"]: record["usd_per_unit"] for record in records
        }
        return [rates.get(currency) for currency in currencies]


class LedgerByPaymentLoader(DataLoader[int, list[LedgerRow]]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, payment_ids: Sequence[int]) -> list[list[LedgerRow]]:
        by_payment: dict[int, list[LedgerRow]] = defaultdict(list)
        for record in await fetch(self.database, LEDGER_BY_PAYMENT, list(payment_ids)):
            entry = LedgerRow._make(record)
            by_payment[entry.payment_id].append(entry)
        return [by_payment.get(payment_id, []) for payment_id in payment_ids]


class RatingsByListingLoader(DataLoader[int, Record | None]):
    """A listing's ``listing_rating`` sums; None before any review counted."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, listing_ids: Sequence[int]) -> list[Record | None]:
        records = await fetch(self.database, RATINGS_BY_LISTING, list(listing_ids))
        by_listing = {record["listing_id"]: record for record in records}
        return [by_listing.get(listing_id) for listing_id in listing_ids]


class LastMessageByThreadLoader(DataLoader[int, MessageRow | None]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, thread_ids: Sequence[int]) -> list[MessageRow | None]:
        records = await fetch(self.database, LAST_MESSAGE_BY_THREAD, list(thread_ids))
        by_thread = {row.thread_id: row for row in map(MessageRow._make, records)}
        return [by_thread.get(thread_id) for thread_id in thread_ids]


class SavedByUserLoader(DataLoader[tuple[int, int], bool]):
    """Whether a user saved a listing, keyed (user id, listing id)."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, keys: Sequence[tuple[int, int]]) -> list[bool]:
        records = await fetch(
            self.database,
            SAVED_BY_USER,
            [user_id for user_id, _ in keys],
            [listing_id for _, listing_id in keys],
        )
        saved = {(record["user_id"], record["listing_id"]) for record in records}
        return [key in saved for key in keys]


LoaderT = TypeVar("LoaderT", bound=DataLoader)  # type: ignore[type-arg]


def _on_first_use(make: Callable[[Database], LoaderT]) -> "cached_property[LoaderT]":
    return cached_property(lambda loaders: make(loaders.database))


class Loaders:
    """One set per request, so nothing cached leaks from one viewer to another. Each loader is
    made on first use: a search page uses two of them."""

    def __init__(self, database: Database) -> None:
        self.database = database

    user_by_id = _on_first_use(lambda db: RowByIdLoader(db, USERS_BY_ID, UserRow._make))
    # Deleted listings too: callers decide who may see what.
    listing_by_id = _on_first_use(lambda db: RowByIdLoader(db, LISTINGS_BY_ID, ListingRow._make))
    photos_by_listing = _on_first_use(PhotosByListingLoader)
    booking_by_id = _on_first_use(lambda db: RowByIdLoader(db, BOOKINGS_BY_ID, BookingRow._make))
    payment_by_id = _on_first_use(lambda db: RowByIdLoader(db, PAYMENTS_BY_ID, PaymentRow._make))
    payment_by_booking = _on_first_use(PaymentByBookingLoader)
    payout_by_booking = _on_first_use(PayoutByBookingLoader)
    usd_per_unit = _on_first_use(UsdPerUnitLoader)
    ledger_by_payment = _on_first_use(LedgerByPaymentLoader)
    review_by_id = _on_first_use(lambda db: RowByIdLoader(db, REVIEWS_BY_ID, ReviewRow._make))
    ratings_by_listing = _on_first_use(RatingsByListingLoader)
    thread_by_id = _on_first_use(
        lambda db: RowByIdLoader(db, THREADS_BY_ID, MessageThreadRow._make)
    )
    message_by_id = _on_first_use(lambda db: RowByIdLoader(db, MESSAGES_BY_ID, MessageRow._make))
    last_message_by_thread = _on_first_use(LastMessageByThreadLoader)
    saved_by_user = _on_first_use(SavedByUserLoader)
