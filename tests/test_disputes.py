"""Disputes: a booking's guest or host opens one (one open at a time, within 30 days of
check-out); admins read the queue, add notes only they see, and resolve with a refund, a
smaller payout or no action; both sides are told, the payout waits meanwhile, all audited."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette

from db.database import Database
from tests.accounts_helpers import bearer, error_code, mails_to, register
from tests.admin_helpers import audited, notified
from tests.booking_helpers import CANCEL, Place, a_place, booked, pay, read
from tests.helpers import FakeClock, gql
from tests.messaging_helpers import choose, email_of
from tests.payout_helpers import payout_stripe, payouts_in, ready_account, run_worker
from tests.receipt_helpers import an_admin
from tests.stripe_helpers import Stripe

DISPUTE_FIELDS = """
  id status openedAs message resolution resolutionAmount { amount currency } resolutionNote
  resolvedAt booking { id } notes { body author { id } }
"""
OPEN = f"""
mutation($booking: ID!, $message: String!) {{
  openDispute(bookingId: $booking, message: $message) {{ {DISPUTE_FIELDS} }}
}}
"""
NOTE = f"""
mutation($id: ID!, $body: String!) {{ addDisputeNote(id: $id, body: $body) {{ {DISPUTE_FIELDS} }} }}
"""
RESOLVE = f"""
mutation($id: ID!, $resolution: DisputeResolution!, $amount: MoneyInput, $note: String!) {{
  resolveDispute(id: $id, resolution: $resolution, amount: $amount, note: $note) {{
    {DISPUTE_FIELDS}
  }}
}}
"""
QUEUE = f"""
query($status: DisputeStatus, $first: Int, $after: String) {{
  disputes(status: $status, first: $first, after: $after) {{
    edges {{ node {{ {DISPUTE_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} totalCount
  }}
}}
"""
MINE = f"{{ myDisputes {{ edges {{ node {{ {DISPUTE_FIELDS} }} }} totalCount }} }}"
NODE = "query($id: ID!) { node(id: $id) { id ... on Dispute { message notes { body } } } }"


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def opened(client: httpx.AsyncClient, place: Place, booking_id: str, **as_: object) -> dict:
    headers = as_.get("headers", place.as_guest)
    body = await gql(
        client, OPEN, {"booking": booking_id, "message": "The flat was dirty."}, headers=headers
    )
    assert "errors" not in body, body
    return body["data"]["openDispute"]


async def queue(client: httpx.AsyncClient, admin: dict, **filters: object) -> list[dict]:
    body = await gql(client, QUEUE, filters, headers=admin)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["disputes"]["edges"]]


async def test_a_side_opens_one_dispute_at_a_time_and_admins_keep_notes_to_themselves(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    stranger = bearer((await register(client))["accessToken"])

    unpaid = await gql(
        client, OPEN, {"booking": booking["id"], "message": "x"}, headers=place.as_guest
    )
    assert error_code(unpaid) == "CONFLICT"  # PENDING: nothing to dispute yet
    await pay(client, place, booking["id"])
    for message in ("", "   ", "x" * 2_001, "bell\x07"):
        bad = await gql(
            client, OPEN, {"booking": booking["id"], "message": message}, headers=place.as_guest
        )
        assert error_code(bad) == "BAD_USER_INPUT", message
    hidden = await gql(client, OPEN, {"booking": booking["id"], "message": "x"}, headers=stranger)
    assert error_code(hidden) == "NOT_FOUND"
    not_a_side = await gql(client, OPEN, {"booking": booking["id"], "message": "x"}, headers=admin)
    assert error_code(not_a_side) == "FORBIDDEN"

    dispute = await opened(client, place, booking["id"])
    assert (dispute["status"], dispute["openedAs"]) == ("OPEN", "GUEST")
    assert dispute["notes"] is None  # the guest never sees admins' notes
    second = await gql(client, OPEN, {"booking": booking["id"], "message": "Me too"},
                       headers=place.as_host)  # fmt: skip
    assert error_code(second) == "CONFLICT"

    for side in (place.as_guest, place.as_host):
        told = await notified(app, client, side)
        assert [n["kind"] for n in told].count("DISPUTE_OPENED") == 1
    [entry] = await audited(client, admin, "dispute.open")
    assert entry["subjectId"] == dispute["id"]

    # The queue, and the notes: admins only.
    assert [d["id"] for d in await queue(client, admin)] == [dispute["id"]]
    assert await queue(client, admin, status="RESOLVED") == []
    assert error_code(await gql(client, QUEUE, headers=place.as_host)) == "FORBIDDEN"
    noted = await gql(client, NOTE, {"id": dispute["id"], "body": "Asked for photos."},
                      headers=admin)  # fmt: skip
    assert [n["body"] for n in noted["data"]["addDisputeNote"]["notes"]] == ["Asked for photos."]
    assert error_code(
        await gql(client, NOTE, {"id": dispute["id"], "body": ""}, headers=admin)
    ) == ("BAD_USER_INPUT")
    sneaky = await gql(client, NOTE, {"id": dispute["id"], "body": "hi"}, headers=place.as_guest)
    assert error_code(sneaky) == "FORBIDDEN"
    [entry] = await audited(client, admin, "dispute.note")
    assert entry["reason"] == "Asked for photos."
    [from_queue] = await queue(client, admin)
    assert [n["body"] for n in from_queue["notes"]] == ["Asked for photos."]
    for side in (place.as_guest, place.as_host):
        mine = await gql(client, MINE, headers=side)
        [seen] = [edge["node"] for edge in mine["data"]["myDisputes"]["edges"]]
        assert (seen["id"], seen["notes"]) == (dispute["id"], None)
        node = await gql(client, NODE, {"id": dispute["id"]}, headers=side)
        assert node["data"]["node"] == {
            "id": dispute["id"], "message": "The flat was dirty.", "notes": None
        }  # fmt: skip
    assert (await gql(client, NODE, {"id": dispute["id"]}, headers=stranger))["data"] == {
        "node": None
    }
    assert (await gql(client, MINE, headers=stranger))["data"]["myDisputes"]["totalCount"] == 0


async def test_only_stays_confirmed_or_completed_and_within_30_days_of_check_out(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client)
    canceled = await booked(client, place, 5, 6)
    await pay(client, place, canceled["id"])
    await gql(client, CANCEL, {"id": canceled["id"]}, headers=place.as_guest)
    refused = await gql(client, OPEN, {"booking": canceled["id"], "message": "x"},
                        headers=place.as_guest)  # fmt: skip
    assert error_code(refused) == "CONFLICT"

    early = await booked(client, place, 3, 4)
    await pay(client, place, early["id"])
    stay = await booked(client, place, 10, 12)
    await pay(client, place, stay["id"])
    # 29 days and 23 hours after the stay's check-out (11:00 in Lisbon, on its last day);
    # more than 30 days after the early one's.
    clock.advance(days=41, hours=22)
    await run_worker(app)  # both completed
    too_late = await gql(client, OPEN, {"booking": early["id"], "message": "x"},
                         headers=place.as_guest)  # fmt: skip
    assert error_code(too_late) == "CONFLICT"
    assert (await opened(client, place, stay["id"], headers=place.as_host))["openedAs"] == "HOST"


async def test_resolving_with_a_refund_pays_the_guest_back_within_what_is_left(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment = await pay(client, place, booking["id"])
    paid = Decimal(payment["amount"]["amount"])
    await choose(client, place.guest, language="pt")
    dispute = await opened(client, place, booking["id"])

    async def resolve(resolution: str, amount: dict | None, note: str = "Photos agree.") -> dict:
        variables = {"id": dispute["id"], "resolution": resolution, "amount": amount, "note": note}
        return await gql(client, RESOLVE, variables, headers=admin)

    assert error_code(await resolve("REFUND", None)) == "BAD_USER_INPUT"
    assert error_code(await resolve("REFUND", eur(str(paid + 1)))) == "BAD_USER_INPUT"
    assert error_code(await resolve("REFUND", eur("0"))) == "BAD_USER_INPUT"
    assert error_code(await resolve("REFUND", {"amount": "5", "currency": "USD"})) == (
        "BAD_USER_INPUT"
    )
    assert error_code(await resolve("NO_ACTION", eur("5"))) == "BAD_USER_INPUT"
    assert error_code(await resolve("REFUND", eur("5"), note="")) == "BAD_USER_INPUT"
    variables = {"id": dispute["id"], "resolution": "NO_ACTION", "note": "no"}
    assert error_code(await gql(client, RESOLVE, variables, headers=place.as_host)) == "FORBIDDEN"

    done = await resolve("REFUND", eur("40"))
    resolved = done["data"]["resolveDispute"]
    assert (resolved["status"], resolved["resolution"]) == ("RESOLVED", "REFUND"), done
    assert resolved["resolutionAmount"] == {"amount": "40.00", "currency": "EUR"}
    assert resolved["resolutionNote"] == "Photos agree."
    after = await read(client, booking["id"], place.as_guest) or {}
    assert after["status"] == "CONFIRMED"
    assert after["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert Decimal(after["payment"]["refundedAmount"]["amount"]) == 40
    assert error_code(await resolve("NO_ACTION", None)) == "CONFLICT"
    for side in (place.as_guest, place.as_host):
        told = [n for n in await notified(app, client, side) if n["kind"] == "DISPUTE_RESOLVED"]
        assert len(told) == 1 and "€40.00" in told[0]["body"], told
    guest_mail = await mails_to(app, await email_of(client, place.guest), count=2)
    host_mail = await mails_to(app, await email_of(client, place.host), count=2)
    assert [m["Subject"] for m in guest_mail if "disputa" in m["Subject"]] == [
        f"Foi aberta uma disputa sobre {after['listing']['title']}",
        f"A disputa sobre {after['listing']['title']} foi resolvida",
    ]
    [resolved_mail] = [m for m in guest_mail if "resolvida" in m["Subject"]]
    assert "Photos agree." in str(resolved_mail)
    assert [m["Subject"] for m in host_mail if "dispute" in m["Subject"]] == [
        f"A dispute was opened about {after['listing']['title']}",
        f"The dispute about {after['listing']['title']} is resolved",
    ]
    [entry] = await audited(client, admin, "dispute.resolve")
    assert entry["after"] == {
        "status": "RESOLVED", "resolution": "REFUND", "amount_minor": 4_000, "currency": "EUR"
    }  # fmt: skip
    # Resolved, the booking may be disputed again.
    again = await opened(client, place, booking["id"], headers=place.as_host)
    assert again["id"] != dispute["id"]
    no_action = await gql(
        client, RESOLVE,
        {"id": again["id"], "resolution": "NO_ACTION", "note": "Nothing wrong."}, headers=admin,
    )  # fmt: skip
    assert no_action["data"]["resolveDispute"]["resolutionAmount"] is None, no_action
    assert len(await queue(client, admin, status=None)) == 2


@pytest.fixture
async def stripe(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with payout_stripe(app, clock) as stripe:
        yield stripe


async def test_an_open_dispute_holds_the_payout_and_an_adjustment_makes_it_smaller(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    await ready_account(client, stripe, place)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    clock.advance(days=12)
    await run_worker(app)  # completed
    dispute = await opened(client, place, booking["id"])

    async def adjust(amount: str) -> dict:
        variables = {"id": dispute["id"], "resolution": "PAYOUT_ADJUSTMENT",
                     "amount": eur(amount), "note": "Cleaning was owed."}  # fmt: skip
        return await gql(client, RESOLVE, variables, headers=admin)

    assert error_code(await adjust("10")) == "CONFLICT"  # no payout made yet
    clock.advance(days=1)
    await run_worker(app)
    await run_worker(app)
    [payout] = await payouts_in(database)
    assert payout.status == "PENDING" and stripe.fake.transfers == {}  # held
    assert error_code(await adjust(str(Decimal(payout.amount_minor) / 100 + 1))) == (
        "BAD_USER_INPUT"
    )
    done = await adjust("10")
    assert done["data"]["resolveDispute"]["resolution"] == "PAYOUT_ADJUSTMENT", done
    await run_worker(app)
    [paid] = await payouts_in(database)
    assert (paid.status, paid.amount_minor) == ("PAID", payout.amount_minor - 1_000)
    [transfer] = stripe.fake.transfers.values()
    assert transfer["amount"] == payout.amount_minor - 1_000
    [entry] = await audited(client, admin, "dispute.resolve")
    assert entry["after"]["payout_minor"] == {
        "before": payout.amount_minor, "after": payout.amount_minor - 1_000
    }  # fmt: skip

    # Once sent, the payout cannot be adjusted.
    dispute = await opened(client, place, booking["id"], headers=place.as_host)
    assert error_code(await adjust("1")) == "CONFLICT"


async def test_racing_sides_open_one_dispute(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    variables = {"booking": booking["id"], "message": "Both at once"}
    bodies = await asyncio.gather(
        *(gql(client, OPEN, variables, headers=h) for h in [place.as_guest, place.as_host] * 3)
    )
    assert sorted(error_code(b) if "errors" in b else "" for b in bodies) == [
        "", *["CONFLICT"] * 5
    ], bodies  # fmt: skip


async def test_the_queue_goes_oldest_first_a_page_at_a_time(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    opened_ids = []
    for _ in range(3):
        place = await a_place(client)
        booking = await booked(client, place, 10, 12)
        await pay(client, place, booking["id"])
        opened_ids.append((await opened(client, place, booking["id"]))["id"])
    page = await gql(client, QUEUE, {"first": 2}, headers=admin)
    first = page["data"]["disputes"]
    assert [edge["node"]["id"] for edge in first["edges"]] == opened_ids[:2]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (3, True)
    after = first["pageInfo"]["endCursor"]
    assert [d["id"] for d in await queue(client, admin, first=2, after=after)] == opened_ids[2:]
    for bad in ({"first": 0}, {"first": 101}, {"after": "nonsense"}):
        assert error_code(await gql(client, QUEUE, bad, headers=admin)) == "BAD_USER_INPUT"
