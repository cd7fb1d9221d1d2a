"""The scalars of the API: Date, DateTime (always with an offset) and Decimal (a string).

Each input is bounded before it reaches a service: dates within years Roost can do arithmetic
on, decimals finite, short and below a quadrillion. A refused value raises ``InvalidScalar``,
whose message reads well after graphql-core's own prefix and never repeats the value.
"""

import datetime
import decimal

import strawberry

EARLIEST = datetime.date(1900, 1, 1)
LATEST = datetime.date(2999, 12, 31)
MAX_DECIMAL_CHARACTERS = 40
DECIMAL_DIGITS_BEFORE_THE_POINT = 15
DECIMAL_DIGITS_AFTER_THE_POINT = 12


class InvalidScalar(ValueError):
    """A value the scalar refuses: the client's input, never a bug."""


def _text(value: object, kind: str, example: str) -> str:
    if not isinstance(value, str):
        raise InvalidScalar(f"A {kind} is written as a string, like {example}.")
    return value


def _in_range(day: datetime.date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise InvalidScalar(f"Dates run from {EARLIEST} to {LATEST}.")


def _parse_date(value: object) -> datetime.date:
    text = _text(value, "Date", '"2027-01-31"')
    try:
        parsed = datetime.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidScalar('A Date is written YYYY-MM-DD, like "2027-01-31".')
    _in_range(parsed)
    return parsed


def _serialize_datetime(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a DateTime must carry its offset")
    return value.isoformat()


def _parse_datetime(value: object) -> datetime.datetime:
    example = '"2026-11-21T10:00:00+00:00"'
    text = _text(value, "DateTime", example)
    try:
        parsed = datetime.datetime.fromisoformat(text) if len(text) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidScalar(f"A DateTime is ISO 8601 with its offset, like {example}.")
    _in_range(parsed.date())
    return parsed


def _parse_decimal(value: object) -> decimal.Decimal:
    text = _text(value, "Decimal", '"120.50"').strip()
    try:
        parsed = decimal.Decimal(text) if len(text) <= MAX_DECIMAL_CHARACTERS else None
    except decimal.InvalidOperation:
        parsed = None
    if parsed is None or not parsed.is_finite():
        raise InvalidScalar('A Decimal is a number written as a string, like "120.50".')
    # adjusted(): the power of ten of the first digit, read without any arithmetic (abs() of
    # 1E+999999999 would overflow the decimal context).
    if parsed and parsed.adjusted() >= DECIMAL_DIGITS_BEFORE_THE_POINT:
        raise InvalidScalar("A Decimal must be below 10^15.")
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_DIGITS_AFTER_THE_POINT:
        raise InvalidScalar("A Decimal has at most 12 digits after the point.")
    return parsed


Date = strawberry.scalar(
    name="Date",
    description=f"A calendar date, `YYYY-MM-DD`, from {EARLIEST} to {LATEST}.",
    serialize=datetime.date.isoformat,
    parse_value=_parse_date,
)
DateTime = strawberry.scalar(
    name="DateTime",
    description="A moment in time, ISO 8601 with its offset: `2026-11-21T10:00:00+00:00`.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)
Decimal = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, written as a string: `"120.50"`; below 10^15, with at most '
        "12 digits after the point."
    ),
    serialize=str,
    parse_value=_parse_decimal,
)

SCALAR_MAP = {datetime.date: Date, datetime.datetime: DateTime, decimal.Decimal: Decimal}
