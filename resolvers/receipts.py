"""A payment's receipt, for those who may see its booking."""

from db.rows import PaymentRow
from resolvers.permissions import can_see_booking
from schema.context import Info
from services import receipts
from services.receipts import Receipt


async def receipt(info: Info, payment: PaymentRow) -> Receipt | None:
    """Null for a viewer who may not see the payment's booking, as the payment itself is."""
    loaders = info.context.loaders
    booking = await loaders.booking_by_id.load_existing(payment.booking_id)
    if not await can_see_booking(info, booking):
        return None
    return receipts.build(await receipts.sources_of(loaders, payment))
