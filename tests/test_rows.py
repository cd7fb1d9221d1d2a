"""The read model's rows say what their tables hold, and the hot reads fill them in order."""

import types
from typing import Any, NamedTuple, get_args, get_origin, get_type_hints

import asyncpg
import pytest

from db import loaders
from db.models import Base
from db.rows import AmenityRow, BookingRow, ListingRow, PaymentRow, PhotoRow, UserRow

# Each row, its table, and the columns it leaves out or adds.
ROWS: list[tuple[type[Any], str, set[str], set[str]]] = [
    (UserRow, "user_account", {"password_hash", "updated_at"}, {"avatar_thumbnail_key"}),
    (ListingRow, "listing", {"search_vector"}, set()),
    (BookingRow, "booking", set(), set()),
    (PaymentRow, "payment", {"check_at", "payer"}, set()),  # the worker's and refunds' alone
    (AmenityRow, "amenity", set(), set()),
]


def _split(annotation: Any) -> tuple[Any, bool]:
    """The Python type of a row's field, and whether it may be None."""
    if isinstance(annotation, types.UnionType):
        (inner,) = (arg for arg in get_args(annotation) if arg is not type(None))
        return get_origin(inner) or inner, True
    return get_origin(annotation) or annotation, False


@pytest.mark.parametrize(("row", "table_name", "left_out", "added"), ROWS)
def test_a_row_has_its_tables_columns_with_their_types(
    row: type[NamedTuple], table_name: str, left_out: set[str], added: set[str]
) -> None:
    table = Base.metadata.tables[table_name]
    fields = set(row._fields)
    assert fields - added == set(table.c.keys()) - left_out
    hints = get_type_hints(row)
    for name in fields - added:
        column = table.c[name]
        python_type, nullable = _split(hints[name])
        assert (name, python_type) == (name, column.type.python_type)
        assert (name, nullable) == (name, column.nullable)


@pytest.mark.parametrize(
    ("sql", "row"),
    [
        (loaders.USERS_BY_ID, UserRow),
        (loaders.LISTINGS_BY_ID, ListingRow),
        (loaders.PHOTOS_BY_LISTING, PhotoRow),
        (loaders.BOOKINGS_BY_ID, BookingRow),
        (loaders.PAYMENTS_BY_ID, PaymentRow),
        (loaders.PAYMENTS_BY_BOOKING, PaymentRow),
    ],
)
async def test_a_loader_selects_its_rows_fields_in_order(
    database_url: str, sql: str, row: type[NamedTuple]
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        statement = await connection.prepare(sql)
        names = [attribute.name for attribute in statement.get_attributes()]
    finally:
        await connection.close()
    assert names == list(row._fields)
