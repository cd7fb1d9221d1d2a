"""The dashboard's money and dispute pages: cancelling a booking with a refund, refunding a
payment, and a dispute's notes and resolution write the audit entries of adminCancelBooking,
refundPayment, addDisputeNote and resolveDispute and move the same money; the payouts, provider
events and disputes pages page and filter, and refuse bad input by field."""

import base64
from typing import Any

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from db.database import Database
from db.models import AuditEntry, Booking, Payment
from tests.booking_helpers import a_place, booked, pay
from tests.dashboard_helpers import an_admin_account, csrf_in, signed_in
from tests.helpers import committed, gql

ADMIN_CANCEL = """
mutation($id: ID!, $refund: MoneyInput!, $reason: String!) {
  adminCancelBooking(id: $id, refund: $refund, reason: $reason) { id status }
}
"""
REFUND = """
mutation($id: ID!, $amount: MoneyInput!, $reason: String!) {
  refundPayment(id: $id, amount: $amount, reason: $reason) { id status }
}
"""
OPEN = """
mutation($booking: ID!, $message: String!) { openDispute(bookingId: $booking, message: $message) {
  id } }
"""
NOTE = "mutation($id: ID!, $body: String!) { addDisputeNote(id: $id, body: $body) { id } }"
RESOLVE = """
mutation($id: ID!, $resolution: DisputeResolution!, $amount: MoneyInput, $note: String!) {
  resolveDispute(id: $id, resolution: $resolution, amount: $amount, note: $note) { id status }
}
"""


def number(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":")[1])


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def _shape(entry: AuditEntry) -> tuple[Any, ...]:
    """What an entry says, but the ids of the rows it made (a note's, an operation's)."""

    def plain(values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        return {k: v for k, v in values.items() if not k.endswith("_id") or k == "booking_id"}

    return (
        entry.actor_id,
        entry.action,
        entry.subject_type,
        plain(entry.before),
        plain(entry.after),
        entry.reason,
    )


async def _entries(database: Database, action: str) -> list[AuditEntry]:
    async with committed(database) as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


async def _twins(database: Database, action: str) -> None:
    by_api, by_page = await _entries(database, action)
    assert _shape(by_api) == _shape(by_page), action
    assert by_api.subject_id != by_page.subject_id


async def paid_booking(client: httpx.AsyncClient, title: str) -> tuple[Any, dict, dict]:
    place = await a_place(client, title=title)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    return place, booking, payment


async def test_money_and_dispute_actions_write_the_audit_entries_of_their_graphql_twins(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email, api = await an_admin_account(client, database)
    _, cancel_api, _ = await paid_booking(client, "Cancel by API")
    _, cancel_page, _ = await paid_booking(client, "Cancel by page")
    _, _, refund_api = await paid_booking(client, "Refund by API")
    _, refund_page_booking, refund_page = await paid_booking(client, "Refund by page")
    disputed = []
    for title in ("Dispute by API", "Dispute by page"):
        place, booking, _ = await paid_booking(client, title)
        body = await gql(
            client,
            OPEN,
            {"booking": booking["id"], "message": "The flat was dirty."},
            headers=place.as_guest,
        )
        assert "errors" not in body, body
        disputed.append(body["data"]["openDispute"]["id"])
    dispute_api, dispute_page = disputed
    reason = "Host reported a flood."

    async with signed_in(app, email) as visitor:
        booking_page = await visitor.get(f"/admin/bookings/{number(cancel_page['id'])}")
        assert "Cancel the booking" in booking_page.text
        token = csrf_in(booking_page.text)

        async def post(url: str, **data: str) -> httpx.Response:
            response = await visitor.post(url, data={"csrf": token, **data})
            assert response.status_code == 303, response.text
            return response

        variables = {"id": cancel_api["id"], "refund": eur("20"), "reason": reason}
        assert "errors" not in await gql(client, ADMIN_CANCEL, variables, headers=api)
        await post(
            f"/admin/bookings/{number(cancel_page['id'])}/cancel",
            refund="20",
            currency="EUR",
            reason=reason,
        )

        variables = {"id": refund_api["id"], "amount": eur("10"), "reason": reason}
        assert "errors" not in await gql(client, REFUND, variables, headers=api)
        refund_form = await visitor.get(f"/admin/bookings/{number(refund_page_booking['id'])}")
        assert f'action="/admin/payments/{number(refund_page["id"])}/refund"' in refund_form.text
        refunded = await post(
            f"/admin/payments/{number(refund_page['id'])}/refund",
            amount="10",
            currency="EUR",
            reason=reason,
            booking=str(number(refund_page_booking["id"])),
        )
        assert refunded.headers["location"].endswith("?done=payment-refunded")

        note = {"id": dispute_api, "body": "Asked the host for photos."}
        assert "errors" not in await gql(client, NOTE, note, headers=api)
        await post(f"/admin/disputes/{number(dispute_page)}/notes", body=note["body"])
        variables = {
            "id": dispute_api,
            "resolution": "REFUND",
            "amount": eur("15"),
            "note": "Photos agree.",
        }
        assert "errors" not in await gql(client, RESOLVE, variables, headers=api)
        resolved = await post(
            f"/admin/disputes/{number(dispute_page)}/resolve",
            resolution="REFUND",
            amount="15",
            currency="EUR",
            note="Photos agree.",
        )
        assert resolved.headers["location"].endswith("?done=dispute-resolved")
        page = await visitor.get(f"/admin/disputes/{number(dispute_page)}")
        assert "Asked the host for photos." in page.text and "RESOLVED" in page.text

    for action in ("booking.admin_cancel", "payment.refund", "dispute.note", "dispute.resolve"):
        await _twins(database, action)
    async with committed(database) as session:
        statuses = dict((await session.execute(select(Booking.id, Booking.status))).all())
        refunded_minor = dict(
            (await session.execute(select(Payment.id, Payment.refunded_minor))).all()
        )
    assert statuses[number(cancel_api["id"])] == statuses[number(cancel_page["id"])] == "CANCELED"
    assert refunded_minor[number(refund_api["id"])] == refunded_minor[number(refund_page["id"])]
    assert refunded_minor[number(refund_page["id"])] == 1000


async def test_money_pages_page_filter_and_refuse_bad_input(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email, _ = await an_admin_account(client, database)
    _, booking, payment = await paid_booking(client, "A paid loft")
    booking_id = number(booking["id"])
    async with signed_in(app, email) as visitor:
        for url in (
            "/admin/payouts",
            "/admin/payouts?status=FAILED",
            "/admin/events",
            f"/admin/events?payment={number(payment['id'])}",
            "/admin/disputes",
            "/admin/disputes?status=ALL",
            "/admin/disputes?status=RESOLVED",
        ):
            assert (await visitor.get(url)).status_code == 200, url
        for url in (
            "/admin/payouts?status=LOST",
            "/admin/payouts?from=soon",
            "/admin/events?provider=BANK",
            "/admin/disputes?status=MAYBE",
            "/admin/disputes?after=nope",
        ):
            assert (await visitor.get(url)).status_code == 400, url
        assert (await visitor.get("/admin/disputes/999999")).status_code == 404

        token = csrf_in((await visitor.get(f"/admin/bookings/{booking_id}")).text)
        for refund, status in (("lots", 400), ("-1", 400), ("999999", 400)):
            refused = await visitor.post(
                f"/admin/bookings/{booking_id}/cancel",
                data={"csrf": token, "refund": refund, "currency": "EUR", "reason": "Flood"},
            )
            assert refused.status_code == status, refund
            assert "refund" in refused.text
        retry = await visitor.post("/admin/payouts/999999/retry", data={"csrf": token})
        assert retry.status_code == 404
    async with committed(database) as session:
        assert await session.scalar(select(Booking.status)) == "CONFIRMED"
        assert await session.scalar(select(AuditEntry.id)) is None
