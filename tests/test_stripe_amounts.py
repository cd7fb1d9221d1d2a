"""Stripe's units, converted in the gateway only and exactly: what Stripe cannot take is
refused, never rounded."""

import pytest

from gateways.payments import PaymentDeclined
from gateways.stripe import from_stripe, to_stripe


@pytest.mark.parametrize(
    ("minor", "currency", "stripe_amount"),
    [
        (26_220, "EUR", 26_220),  # two decimals on both sides
        (26_220, "usd", 26_220),
        (31_500, "JPY", 31_500),  # zero-decimal: yen as they are
        (120_000, "KRW", 120_000),
        (12_340, "KWD", 12_340),  # three decimals, a multiple of 10
        (5_000, "BHD", 5_000),
        (1_500, "ISK", 150_000),  # no decimals in ISO 4217, two at Stripe
    ],
)
def test_amounts_cross_to_stripe_and_back_exactly(
    minor: int, currency: str, stripe_amount: int
) -> None:
    assert to_stripe(minor, currency) == stripe_amount
    assert from_stripe(stripe_amount, currency.lower()) == minor


@pytest.mark.parametrize("currency", ["KWD", "BHD", "JOD", "OMR", "TND"])
def test_three_decimal_amounts_not_a_multiple_of_ten_are_refused(currency: str) -> None:
    with pytest.raises(
        PaymentDeclined, match=rf"{currency} in multiples of 0.010 only, not 12.345"
    ):
        to_stripe(12_345, currency)


def test_an_amount_at_stripe_that_is_no_whole_minor_unit_of_ours_is_an_error() -> None:
    with pytest.raises(ValueError, match="no whole minor unit"):
        from_stripe(150_050, "isk")
