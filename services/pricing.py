"""The price of a stay, in integer minor units of the listing's currency.

One rounding rule everywhere: a percentage of an amount is rounded half up to the minor unit
(``percent_of``). Each part is rounded once, and the total is the sum of the parts, so the
parts always add up to it. The quote and the booking are priced by the same function.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal


def percent_of(minor: int, percent: Decimal) -> int:
    """``percent`` % of ``minor``, rounded half up to a whole minor unit."""
    return int((Decimal(minor) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class FeePolicy:
    """What the platform adds to a stay."""

    guest_service_fee_percent: Decimal = Decimal(14)
    occupancy_tax_percent: Decimal = Decimal(0)
    occupancy_tax_percent_by_country: Mapping[str, Decimal] = field(default_factory=dict)

    def tax_percent(self, country: str) -> Decimal:
        return self.occupancy_tax_percent_by_country.get(country, self.occupancy_tax_percent)


@dataclass(frozen=True)
class Price:
    currency: str
    night_prices: tuple[int, ...]
    cleaning_fee: int
    service_fee: int
    taxes: int

    @property
    def nights(self) -> int:
        return len(self.night_prices)

    @property
    def nightly_subtotal(self) -> int:
        return sum(self.night_prices)

    @property
    def total(self) -> int:
        return self.nightly_subtotal + self.cleaning_fee + self.service_fee + self.taxes


def price_stay(
    *,
    check_in: date,
    check_out: date,
    nightly_price: int,
    night_overrides: Mapping[date, int],
    cleaning_fee: int | None,
    currency: str,
    country: str,
    fees: FeePolicy,
) -> Price:
    """Nights at their price (an override where the host set one), the cleaning fee, then the
    guest service fee and the occupancy tax, both on nights plus cleaning."""
    nights = (check_out - check_in).days
    night_prices = tuple(
        night_overrides.get(check_in + timedelta(days=offset), nightly_price)
        for offset in range(nights)
    )
    cleaning = cleaning_fee or 0
    base = sum(night_prices) + cleaning
    return Price(
        currency=currency,
        night_prices=night_prices,
        cleaning_fee=cleaning,
        service_fee=percent_of(base, fees.guest_service_fee_percent),
        taxes=percent_of(base, fees.tax_percent(country)),
    )
