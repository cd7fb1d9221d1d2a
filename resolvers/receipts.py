"""A payment's receipt, for those who may see its booking; its host's payout statement, for
the host and admins."""

from auth import rules
from db.rows import PaymentRow
from resolvers.permissions import can_see_booking, current_user
from schema.context import Info
from services import receipts, statements
from services.receipts import Receipt
from services.statements import HostStatement


async def receipt(info: Info, payment: PaymentRow) -> Receipt | None:
    """Null for a viewer who may not see the payment's booking, as the payment itself is."""
    loaders = info.context.loaders
    booking = await loaders.booking_by_id.load_existing(payment.booking_id)
    if not await can_see_booking(info, booking):
        return None
    return receipts.build(await receipts.sources_of(loaders, payment))


async def host_statement(info: Info, payment: PaymentRow) -> HostStatement | None:
    """Null for anyone but the listing's host and admins: the guest never sees the host fee."""
    loaders = info.context.loaders
    booking = await loaders.booking_by_id.load_existing(payment.booking_id)
    listing = await loaders.listing_by_id.load_existing(booking.listing_id)
    if not rules.can_see_payout(await current_user(info), host_id=listing.host_id):
        return None
    services = info.context.services
    policy = await services.current_payout_policy()
    return await statements.statement_of(
        loaders, payment, policy=policy, gateways=services.payment_gateways
    )
