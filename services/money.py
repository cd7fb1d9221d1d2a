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


def to_minor(amount: Decimal | str, currency: str) -> int:
    """The amount in minor units; raises ValueError when the currency cannot express it."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError):
        raise ValueError("is not a number") from None
    if not value.is_finite():
        raise ValueError("is not a number")
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        digits = minor_digits(currency)
        raise ValueError(
            f"{currency} has no fractions of its unit"
            if digits == 0
            else f"{currency} amounts have at most {digits} decimals"
        )
    return int(scaled)
