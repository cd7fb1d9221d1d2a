"""Amounts in the viewer's currency: which one that is, and what an amount comes to in it."""

from resolvers.permissions import current_user
from schema.context import Info
from services.errors import InvalidInput
from services.exchange_rates import convert, rate_between
from services.money import known_currencies


async def viewer_currency(info: Info) -> str:
    """The signed-in viewer's preferred currency, else US dollars."""
    user = await current_user(info)
    return user.currency if user is not None else "USD"


async def converted_minor(
    info: Info, *, minor: int, currency: str, to: str | None, booking_id: int | None
) -> tuple[int, str] | None:
    """``minor`` units of ``currency`` in ``to`` (default: the viewer's currency), as minor
    units and the currency; None when no rate is known. An amount of a booking paid while
    its guest preferred ``to`` is converted at the rate frozen then."""
    target = (to if to is not None else await viewer_currency(info)).upper()
    if target not in known_currencies():
        raise InvalidInput.field("to", "is not an ISO 4217 currency code")
    if target == currency:
        return minor, currency
    loaders = info.context.loaders
    booking = await loaders.booking_by_id.load(booking_id) if booking_id is not None else None
    if booking is not None and booking.display_currency == target and booking.display_rate:
        rate = booking.display_rate
    else:
        source_usd, target_usd = await loaders.usd_per_unit.load_many([currency, target])
        if source_usd is None or target_usd is None:
            return None
        rate = rate_between(source_usd, target_usd)
    return convert(minor, currency, rate, target), target
