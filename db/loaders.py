"""Per-request dataloaders: batched reads, answered in key order.

Hot ones read SQLAlchemy Core rows rather than ORM objects: far less CPU per row.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import Row, select

from db.database import Database
from db.models import Listing, ListingPhoto, Upload, User

_listing = Listing.__table__
LISTING_COLUMNS = [column for column in _listing.c if column.name != "search_vector"]


_user = User.__table__
_USER_COLUMNS = [
    *_user.c,
    Upload.thumbnail_key.label("avatar_thumbnail_key"),
]


class UserByIdLoader(DataLoader[int, Row[Any] | None]):
    """Users as rows with the same attribute names as ``User`` (and ``avatar_thumbnail_key``)."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, ids: Sequence[int]) -> list[Row[Any] | None]:
        statement = (
            select(*_USER_COLUMNS)
            .outerjoin(Upload, Upload.id == _user.c.avatar_upload_id)
            .where(_user.c.id.in_(ids))
        )
        async with self.database.engine.connect() as connection:
            by_id = {row.id: row for row in await connection.execute(statement)}
        return [by_id.get(user_id) for user_id in ids]


class ListingByIdLoader(DataLoader[int, Row[Any] | None]):
    """Listings by id, deleted ones included: callers decide who may see what."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, ids: Sequence[int]) -> list[Row[Any] | None]:
        async with self.database.engine.connect() as connection:
            rows = await connection.execute(select(*LISTING_COLUMNS).where(_listing.c.id.in_(ids)))
            by_id = {row.id: row for row in rows}
        return [by_id.get(listing_id) for listing_id in ids]


class PhotosByListingLoader(DataLoader[int, list[Row[Any]]]):
    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database

    async def batch_load_fn(self, listing_ids: Sequence[int]) -> list[list[Row[Any]]]:
        statement = (
            select(
                ListingPhoto.id,
                ListingPhoto.listing_id,
                ListingPhoto.caption,
                Upload.storage_key,
                Upload.width,
                Upload.height,
            )
            .join(Upload, Upload.id == ListingPhoto.upload_id)
            .where(ListingPhoto.listing_id.in_(listing_ids))
            .order_by(ListingPhoto.listing_id, ListingPhoto.position)
        )
        by_listing: dict[int, list[Row[Any]]] = defaultdict(list)
        async with self.database.engine.connect() as connection:
            for row in await connection.execute(statement):
                by_listing[row.listing_id].append(row)
        return [by_listing.get(listing_id, []) for listing_id in listing_ids]


class Loaders:
    """One set per request, so nothing cached leaks from one viewer to another."""

    def __init__(self, database: Database) -> None:
        self.user_by_id = UserByIdLoader(database)
        self.listing_by_id = ListingByIdLoader(database)
        self.photos_by_listing = PhotosByListingLoader(database)
