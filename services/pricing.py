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


@dataclass(frozen=True)
class HostPayout:
    """What a host is paid for a stay, and what Roost keeps of the host's side."""

    amount: int
    host_fee: int
    refunds: int


def host_payout(
    *,
    nightly_subtotal: int,
    cleaning_fee: int,
    total: int,
    kept: int,
    host_fee_percent: Decimal,
    unit: int = 1,
) -> HostPayout:
    """The host's share of a stay: nights plus cleaning, less the host fee and the refunds.

    Of the guest's total, the service fee is Roost's and the taxes are remitted by Roost, so
    neither reaches the host. The host fee is ``host_fee_percent`` of nights plus cleaning,
    rounded half up to the minor unit like every other percentage. ``kept`` is what the guest
    paid and was not refunded; refunds are what falls short of the booking's ``total`` (a
    change of dates refunds the difference, but the booking's price already shows it). The
    payout is never negative, and is rounded down to a multiple of ``unit`` (the provider's
    smallest transfer: 10 fils of a dinar at Stripe); the few minor units that leaves join the
    host fee, so payout, host fee and refunds still account for every minor unit.
    """
    host_fee = percent_of(nightly_subtotal + cleaning_fee, host_fee_percent)
    refunds = max(0, total - kept)
    owed = max(0, nightly_subtotal + cleaning_fee - host_fee - refunds)
    amount = owed - owed % unit
    return HostPayout(amount=amount, host_fee=host_fee + owed - amount, refunds=refunds)
