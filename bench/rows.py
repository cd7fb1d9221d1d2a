"""What the read model's rows cost on a search page: built from asyncpg records and read.

    ROOST_DATA_DIR=.bench uv run roost seed --listings 3000
    uv run python bench/rows.py --database-url 'postgresql://postgres@/postgres?host=.bench/pg'

A page holds 20 listings (and their hosts and photos); each listing is read some 27 attributes
deep by the schema. Compared: the rows of db/rows.py (named tuples), the same as frozen slotted
dataclasses, and asyncpg records read as attributes through ``__getattr__`` (what the loaders
returned before the rows).
"""

import argparse
import asyncio
import timeit
from dataclasses import make_dataclass
from typing import Any

import asyncpg

from db.loaders import LISTING_SELECT, PHOTOS_BY_LISTING, USERS_BY_ID
from db.rows import ListingRow, PhotoRow, UserRow

READ = (
    "id", "title", "description", "property_type", "latitude", "longitude", "max_guests",
    "bedrooms", "beds", "bathrooms", "rating_avg", "review_count", "instant_book",
    "cancellation_policy", "min_nights", "max_nights", "status", "time_zone", "check_in_time",
    "check_out_time", "created_at", "nightly_price_minor", "currency", "host_id", "amenity_ids",
    "city", "country",
)  # fmt: skip


class AttributeRecord(asyncpg.Record):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def frozen(row: Any) -> Any:
    fields = [(name, Any) for name in row._fields]
    return make_dataclass(f"Frozen{row.__name__}", fields, frozen=True, slots=True)


def microseconds(function: Any) -> float:
    return min(timeit.repeat(function, number=300, repeat=9)) / 300 * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    connection = await asyncpg.connect(args.database_url)
    try:
        page_sql = f"SELECT {LISTING_SELECT}, l.id AS sort_key FROM listing l LIMIT 20"
        listings = await connection.fetch(page_sql)
        as_attributes = await connection.fetch(page_sql, record_class=AttributeRecord)
        listing_ids = [record["id"] for record in listings]
        photos = await connection.fetch(PHOTOS_BY_LISTING, listing_ids)
        users = await connection.fetch(USERS_BY_ID, [record["host_id"] for record in listings])
    finally:
        await connection.close()
    frozen_listing, frozen_photo, frozen_user = map(frozen, (ListingRow, PhotoRow, UserRow))

    def rows() -> None:
        for listing in [ListingRow._make(record[:-1]) for record in listings]:
            for name in READ:
                getattr(listing, name)
        [PhotoRow._make(record) for record in photos]
        [UserRow._make(record) for record in users]

    def dataclasses() -> None:
        for listing in [frozen_listing(*record[:-1]) for record in listings]:
            for name in READ:
                getattr(listing, name)
        [frozen_photo(*record) for record in photos]
        [frozen_user(*record) for record in users]

    def records() -> None:
        for listing in as_attributes:
            for name in READ:
                getattr(listing, name)

    print(f"a page: {len(listings)} listings, {len(photos)} photos, {len(users)} hosts")
    print(f"named tuples, built and read:        {microseconds(rows):6.0f} us")
    print(f"frozen dataclasses, built and read:  {microseconds(dataclasses):6.0f} us")
    print(f"records read through __getattr__:    {microseconds(records):6.0f} us (listings only)")


if __name__ == "__main__":
    asyncio.run(main())
