"""Money: integer amounts in a currency's minor unit (cents, yen, fils), never floats."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def minor_digits(currency: str) -> int:
    """How many decimals the currency's minor unit has: 2 for EUR, 0 for JPY, 3 for KWD."""
    return get_currency_precision(currency)


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    @property
    def amount(self) -> Decimal:
        return Decimal(self.minor).scaleb(-minor_digits(self.currency))

    def formatted(self, locale: str = "en_US") -> str:
        return format_currency(self.amount, self.currency, locale=locale)

    def with_code(self, locale: str = "en_US") -> str:
        """With the ISO code for its sign ("EUR 1,234.50", "JPY 31,500"): for print in fonts
        that lack most currency signs."""
        return format_currency(
            self.amount, self.currency, format="¤¤\u00a0#,##0.00", locale=locale,
            currency_digits=True,
        )  # fmt: skip


# Digits an amount may have before its decimal point: its minor units then fit a bigint.
MAX_WHOLE_DIGITS = 15


def to_minor(amount: Decimal | str, currency: str) -> int:
    """The amount in minor units; raises ValueError when the currency cannot express it.

    Exact for any input: Decimal arithmetic would round to its context's 28 digits (and
    overflow past its exponent range), so the digits are read off the number itself."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError("is not a number") from None
    if not value.is_finite():
        raise ValueError("is not a number")
    if value.is_zero():
        return 0
    if value.adjusted() >= MAX_WHOLE_DIGITS:
        raise ValueError("is too large")
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # only NaN and infinities lack one
        raise ValueError("is not a number")
    kept = list(digits)
    while kept[-1] == 0:  # not zero, so some digit is not 0
        kept.pop()
        exponent += 1
    places = minor_digits(currency)
    if exponent < -places:
        raise ValueError(
            f"{currency} has no fractions of its unit"
            if places == 0
            else f"{currency} amounts have at most {places} decimals"
        )
    minor: int = int("".join(map(str, kept))) * 10 ** (exponent + places)
    return -minor if sign else minor
