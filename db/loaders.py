"""Per-request dataloaders: batched reads, answered in key order.

They run on every search page, so they send fixed SQL through asyncpg (db/raw.py).
"""

from collections import defaultdict
from collections.abc import Sequence

from aiodataloader import DataLoader

from db.database import Database
from db.models import Listing
from db.raw import Record, fetch
from db.states import LIVE_PAYMENT, sql_list

_listing = Listing.__table__
LISTING_COLUMNS = [column for column in _listing.c if column.name != "search_vector"]


USERS_BY_ID = """
SELECT u.*, a.thumbnail_key AS avatar_thumbnail_key
FROM user_account u LEFT JOIN upload a ON a.id = u.avatar_upload_id
WHERE u.id = ANY($1::bigint[])
"""
# Column names from our own model, not from input.
LISTING_SELECT = ", ".join(f"l.{column.name}" for column in LISTING_COLUMNS)
LISTINGS_BY_ID = f"SELECT {LISTING_SELECT} FROM listing l WHERE l.id = ANY($1::bigint[])"
PHOTOS_BY_LISTING = """
SELECT f.id, f.listing_id, f.caption, u.storage_key, u.width, u.height
FROM listing_photo f JOIN upload u ON u.id = f.upload_id
WHERE f.listing_id = ANY($1::bigint[])
ORDER BY f.listing_id, f.position
"""
BOOKINGS_BY_ID = "SELECT * FROM booking WHERE id = ANY($1::bigint[])"
PAYMENTS_BY_ID = "SELECT * FROM payment WHERE id = ANY($1::bigint[])"
# A booking's payment: the live one, else the latest attempt.
PAYMENTS_BY_BOOKING = f"""
SELECT DISTINCT ON (booking_id) * FROM payment WHERE booking_id = ANY($1::bigint[])
ORDER BY booking_id, status NOT IN ({sql_list(LIVE_PAYMENT)}), id DESC
"""


class _ByIdLoader(DataLoader[int, Record | None]):
    sql: str

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, ids: Sequence[int]) -> list[Record | None]:
        by_id = {row["id"]: row for row in await fetch(self.database, self.sql, list(ids))}
        return [by_id.get(key) for key in ids]


class UserByIdLoader(_ByIdLoader):
    """Users with the same attribute names as ``User`` (and ``avatar_thumbnail_key``)."""

    sql = USERS_BY_ID


class ListingByIdLoader(_ByIdLoader):
    """Listings by id, deleted ones included: callers decide who may see what."""

    sql = LISTINGS_BY_ID


class BookingByIdLoader(_ByIdLoader):
    sql = BOOKINGS_BY_ID


class PaymentByIdLoader(_ByIdLoader):
    sql = PAYMENTS_BY_ID


class PaymentByBookingLoader(DataLoader[int, Record | None]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, booking_ids: Sequence[int]) -> list[Record | None]:
        rows = await fetch(self.database, PAYMENTS_BY_BOOKING, list(booking_ids))
        by_booking = {row["booking_id"]: row for row in rows}
        return [by_booking.get(booking_id) for booking_id in booking_ids]


class PhotosByListingLoader(DataLoader[int, list[Record]]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, listing_ids: Sequence[int]) -> list[list[Record]]:
        by_listing: dict[int, list[Record]] = defaultdict(list)
        for row in await fetch(self.database, PHOTOS_BY_LISTING, list(listing_ids)):
            by_listing[row["listing_id"]].append(row)
        return [by_listing.get(listing_id, []) for listing_id in listing_ids]


class Loaders:
    """One set per request, so nothing cached leaks from one viewer to another."""

    def __init__(self, database: Database) -> None:
        self.user_by_id = UserByIdLoader(database)
        self.listing_by_id = ListingByIdLoader(database)
        self.photos_by_listing = PhotosByListingLoader(database)
        self.booking_by_id = BookingByIdLoader(database)
        self.payment_by_id = PaymentByIdLoader(database)
        self.payment_by_booking = PaymentByBookingLoader(database)
