"""The scalars of the API: Date, DateTime (always with an offset) and Decimal (a string)."""

import datetime
import decimal

import strawberry
from strawberry.schema.types.base_scalars import wrap_parser


def _serialize_datetime(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a DateTime must carry its offset")
    return value.isoformat()


def _parse_datetime(value: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a DateTime needs an offset, e.g. 2026-11-21T10:00:00+00:00")
    return parsed


def _parse_decimal(value: str) -> decimal.Decimal:
    parsed = decimal.Decimal(value)
    if not parsed.is_finite():
        raise ValueError("a Decimal must be a finite number")
    return parsed


Date = strawberry.scalar(
    name="Date",
    description="A calendar date, `YYYY-MM-DD`.",
    serialize=datetime.date.isoformat,
    parse_value=wrap_parser(datetime.date.fromisoformat, "Date"),
)
DateTime = strawberry.scalar(
    name="DateTime",
    description="A moment in time, ISO 8601 with its offset: `2026-11-21T10:00:00+00:00`.",
    serialize=_serialize_datetime,
    parse_value=wrap_parser(_parse_datetime, "DateTime"),
)
Decimal = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number, written as a string: `"120.50"`.',
    serialize=str,
    parse_value=wrap_parser(_parse_decimal, "Decimal", exceptions=(ValueError, ArithmeticError)),
)

SCALAR_MAP = {datetime.date: Date, datetime.datetime: DateTime, decimal.Decimal: Decimal}
