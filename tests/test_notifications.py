"""In-app notifications: the worker turns booking, payment, payout and review events into
notifications for the right people, once each; a user reads and marks only their own."""

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from starlette.applications import Starlette

from db.database import Database
from db.models import Notification, OutboxDelivery, OutboxEvent
from tests.booking_helpers import (
    ACCEPT,
    CANCEL,
    CONFIRM_PAYMENT,
    START_PAYMENT,
    Place,
    a_place,
    booked,
    pay,
)
from tests.helpers import FakeClock, StatementCounter, committed, gql
from tests.payout_helpers import completed_stay, payout_stripe, ready_account
from tests.review_helpers import (
    RESPOND,
    a_paid_stay,
    another_guest,
    complete_stays,
    listing_reviews,
    review_guest,
    review_stay,
    worker_of,
)

NOTIFICATIONS = """
query($unread: Boolean, $first: Int, $after: String) {
  notifications(unreadOnly: $unread, first: $first, after: $after) {
    edges { cursor node { id kind title body read createdAt booking { id status } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
UNREAD = "{ unreadNotificationCount }"
MARK_READ = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Notification { title } } }"


async def deliver(app: Starlette) -> None:
    """Runs the worker once: every outbox event due is handled."""
    await worker_of(app).run_once()


async def notified(
    client: httpx.AsyncClient, headers: dict[str, str], *, unread: bool = False, first: int = 50
) -> list[dict]:
    body = await gql(client, NOTIFICATIONS, {"unread": unread, "first": first}, headers=headers)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["notifications"]["edges"]]


async def unread(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    body = await gql(client, UNREAD, headers=headers)
    assert "errors" not in body, body
    return int(body["data"]["unreadNotificationCount"])


async def mark_read(
    client: httpx.AsyncClient, headers: dict[str, str], ids: list[str] | None = None
) -> dict:
    return await gql(client, MARK_READ, {"ids": ids}, headers=headers)


def kinds(notifications: list[dict]) -> list[str]:
    return [notification["kind"] for notification in notifications]


async def requested(app: Starlette, client: httpx.AsyncClient) -> tuple[Place, str]:
    """A paid request (no instant book) at a new place, its events delivered."""
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 5, 8)
    await pay(client, place, booking["id"])
    await deliver(app)
    return place, booking["id"]


async def test_a_guests_request_notifies_the_host_and_their_payment_the_guest(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place, booking_id = await requested(app, client)

    [request] = await notified(client, place.as_host)
    assert request["kind"] == "BOOKING_REQUESTED"
    assert request["title"] == "New booking request for Alfama loft with a view"
    assert "16 Jan to 19 Jan 2027" in request["body"]
    assert "within 24 hours" in request["body"]
    assert request["read"] is False
    assert request["booking"] == {"id": booking_id, "status": "PENDING"}

    # The card is only held until the host answers: nothing to tell the guest yet.
    assert await notified(client, place.as_guest) == []


async def test_an_instant_booking_tells_the_guest_of_the_payment_and_the_confirmation(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    stay = await a_paid_stay(client, await a_place(client))
    await deliver(app)
    guest = await notified(client, stay.as_guest)
    assert sorted(kinds(guest)) == ["BOOKING_CONFIRMED", "PAYMENT_SUCCEEDED"]
    paid = next(n for n in guest if n["kind"] == "PAYMENT_SUCCEEDED")
    assert paid["title"] == "Payment received for Alfama loft with a view"
    assert paid["body"] == "You paid €262.20 for your stay 12 Jan to 14 Jan 2027."
    assert paid["booking"] == {"id": stay.booking_id, "status": "CONFIRMED"}
    [confirmed] = await notified(client, stay.as_host)
    assert confirmed["kind"] == "BOOKING_CONFIRMED"
    assert confirmed["body"].endswith(" stays 12 Jan to 14 Jan 2027.")


async def test_accepting_notifies_both_and_a_host_cancellation_tells_the_guest_the_refund(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place, booking_id = await requested(app, client)
    accepted = await gql(client, ACCEPT, {"id": booking_id}, headers=place.as_host)
    assert "errors" not in accepted, accepted
    await deliver(app)
    guest = await notified(client, place.as_guest)
    host = await notified(client, place.as_host)
    assert kinds(guest) == ["BOOKING_CONFIRMED", "PAYMENT_SUCCEEDED"]
    assert guest[0]["title"] == "Your stay at Alfama loft with a view is confirmed"
    assert kinds(host) == ["BOOKING_CONFIRMED", "BOOKING_REQUESTED"]
    assert host[0]["title"] == "New reservation at Alfama loft with a view"

    canceled = await gql(
        client, CANCEL, {"id": booking_id, "reason": "Burst pipe"}, headers=place.as_host
    )
    assert "errors" not in canceled, canceled
    await deliver(app)
    guest = await notified(client, place.as_guest)
    assert set(kinds(guest[:2])) == {"BOOKING_CANCELED", "PAYMENT_REFUNDED"}
    cancel = next(n for n in guest if n["kind"] == "BOOKING_CANCELED")
    assert cancel["title"] == "Your booking at Alfama loft with a view is canceled"
    assert "The host canceled it. You get €" in cancel["body"]
    refund = next(n for n in guest if n["kind"] == "PAYMENT_REFUNDED")
    assert refund["title"].startswith("€") and "refunded for Alfama loft" in refund["title"]
    # The host canceled: they are not told of their own act.
    assert "BOOKING_CANCELED" not in kinds(await notified(client, place.as_host))


async def test_a_guest_cancellation_tells_the_host(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    stay = await a_paid_stay(client, await a_place(client))
    canceled = await gql(client, CANCEL, {"id": stay.booking_id}, headers=stay.as_guest)
    assert "errors" not in canceled, canceled
    await deliver(app)
    [cancel, *_] = await notified(client, stay.as_host)
    assert cancel["kind"] == "BOOKING_CANCELED"
    assert cancel["body"].endswith(
        "canceled the stay 12 Jan to 14 Jan 2027; those nights are free again."
    )
    assert "BOOKING_CANCELED" not in kinds(await notified(client, stay.as_guest))


async def test_a_declined_payment_tells_the_guest_in_the_banks_words(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 1, 3)
    started = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "TEST"}, headers=place.as_guest
    )
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    await gql(client, CONFIRM_PAYMENT, {"id": payment_id, "succeed": False}, headers=place.as_guest)
    await deliver(app)
    [failed] = await notified(client, place.as_guest)
    assert failed["kind"] == "PAYMENT_FAILED"
    assert failed["title"] == "Your payment for Alfama loft with a view did not go through"
    assert "Your bank said: The TEST payment was declined." in failed["body"]
    assert await notified(client, place.as_host) == []  # nothing reached the host


async def test_a_completed_stay_invites_the_guest_and_reviews_stay_blind_until_published(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    stay = await a_paid_stay(client, await a_place(client))
    await complete_stays(app, clock, 3)
    await deliver(app)
    [completed, *_] = await notified(client, stay.as_guest)
    assert completed["kind"] == "BOOKING_COMPLETED"
    assert completed["title"] == "How was Alfama loft with a view?"
    assert "Review your stay within 14 days" in completed["body"]

    await review_stay(client, stay, comment="Secret praise of the view")
    await deliver(app)
    [received, *_] = await notified(client, stay.as_host)
    assert received["kind"] == "REVIEW_RECEIVED"
    assert received["title"].endswith("reviewed their stay at Alfama loft with a view")
    assert "Secret praise" not in received["body"] and "rated" not in received["body"]
    assert "Review the guest by 28 Jan 2027 to read it" in received["body"]

    await review_guest(client, stay)  # both written: both published
    await deliver(app)
    [published, *_] = await notified(client, stay.as_host)
    assert published["title"].endswith(
        "'s review of their stay at Alfama loft with a view is published"
    )
    guest_side = await notified(client, stay.as_guest)
    # The host's review came second: the guest hears of it published, not of a blind one.
    assert [
        n["title"].endswith("is published") for n in guest_side if n["kind"] == "REVIEW_RECEIVED"
    ] == [True]

    listing = await listing_reviews(client, stay.place.listing_id)
    [review_id] = [edge["node"]["id"] for edge in listing["reviews"]["edges"]]
    answer = {"id": review_id, "response": "Thank you, come back soon!"}
    assert "errors" not in await gql(client, RESPOND, answer, headers=stay.as_host)
    await deliver(app)
    [answered, *_] = await notified(client, stay.as_guest)
    assert answered["kind"] == "REVIEW_RECEIVED"
    assert answered["title"].endswith(" answered your review of Alfama loft with a view")


async def test_an_event_handled_again_notifies_nobody_twice(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    place, _ = await requested(app, client)
    async with committed(database) as session:
        # As if the worker's record of the handler were lost: the event is due again.
        event_id = await session.scalar(
            select(OutboxEvent.id)
            .join(Notification, Notification.event_id == OutboxEvent.id)
            .where(OutboxEvent.kind == "BookingRequested")
            .order_by(OutboxEvent.id.desc())
            .limit(1)
        )
        await session.execute(
            delete(OutboxDelivery).where(
                OutboxDelivery.event_id == event_id, OutboxDelivery.handler == "notify"
            )
        )
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(processed_at=None)
        )
    await deliver(app)
    async with database.read_session() as session:
        assert await session.scalar(
            select(OutboxEvent.processed_at).where(OutboxEvent.id == event_id)
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.event_id == event_id)
            )
            == 1
        )
    assert kinds(await notified(client, place.as_host)) == ["BOOKING_REQUESTED"]


async def test_unread_notifications_are_counted_and_marked_read_all_or_by_id(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place, booking_id = await requested(app, client)
    await gql(client, ACCEPT, {"id": booking_id}, headers=place.as_host)
    await deliver(app)
    guest_ids = [n["id"] for n in await notified(client, place.as_guest)]
    host = await notified(client, place.as_host)
    assert await unread(client, place.as_host) == 2

    # The guest's ids are ignored: only the host's own is marked.
    marked = await mark_read(client, place.as_host, [host[1]["id"], *guest_ids])
    assert marked == {"data": {"markNotificationsRead": 1}}
    assert await unread(client, place.as_host) == 1
    assert await unread(client, place.as_guest) == len(guest_ids) == 2
    assert [n["id"] for n in await notified(client, place.as_host, unread=True)] == [host[0]["id"]]
    assert [n["read"] for n in await notified(client, place.as_host)] == [False, True]
    # Marking again changes nothing.
    assert (await mark_read(client, place.as_host, [host[1]["id"]]))["data"] == {
        "markNotificationsRead": 0
    }

    assert (await mark_read(client, place.as_host))["data"] == {"markNotificationsRead": 1}
    assert await unread(client, place.as_host) == 0
    assert await notified(client, place.as_host, unread=True) == []
    assert await unread(client, place.as_guest) == 2


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        (["nonsense"], "is not a valid id"),
        (["TGlzdGluZzox"], "is not the id of a Notification"),  # Listing:1
    ],
)
async def test_bad_ids_are_bad_user_input(
    app: Starlette, client: httpx.AsyncClient, ids: list[str], problem: str
) -> None:
    place, _ = await requested(app, client)
    body = await mark_read(client, place.as_host, ids)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == {"ids": problem}
    assert await unread(client, place.as_host) == 1


async def test_too_many_ids_or_too_big_a_page_are_refused(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place, _ = await requested(app, client)
    [notification] = await notified(client, place.as_host)
    body = await mark_read(client, place.as_host, [notification["id"]] * 101)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(client, NOTIFICATIONS, {"first": 101}, headers=place.as_host)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await unread(client, place.as_host) == 1


async def test_another_user_never_sees_them_and_anonymous_is_refused(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place, _ = await requested(app, client)
    [notification] = await notified(client, place.as_host)
    mine = await gql(client, NODE, {"id": notification["id"]}, headers=place.as_host)
    assert mine["data"]["node"]["id"] == notification["id"]
    theirs = await gql(client, NODE, {"id": notification["id"]}, headers=place.as_guest)
    assert theirs == {"data": {"node": None}}
    assert all(n["id"] != notification["id"] for n in await notified(client, place.as_guest))

    for query, variables in ((NOTIFICATIONS, {}), (UNREAD, {}), (MARK_READ, {"ids": None})):
        body = await gql(client, query, variables)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert await unread(client, place.as_host) == 1


async def test_pages_go_newest_first_without_a_query_per_notification(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client, instantBook=False)
    for check_in in (2, 5, 8):
        booking = await booked(client, place, check_in, check_in + 2)
        await pay(client, place, booking["id"])
    await deliver(app)
    [newest, *_] = everything = await notified(client, place.as_host)
    assert len(everything) == 3
    assert "19 Jan to 21 Jan 2027" in newest["body"]

    body = await gql(client, NOTIFICATIONS, {"first": 2}, headers=place.as_host)
    page = body["data"]["notifications"]
    assert [edge["node"]["id"] for edge in page["edges"]] == [n["id"] for n in everything[:2]]
    assert page["pageInfo"]["hasNextPage"] is True and page["totalCount"] == 3
    body = await gql(
        client, NOTIFICATIONS, {"after": page["pageInfo"]["endCursor"]}, headers=place.as_host
    )
    assert [edge["node"]["id"] for edge in body["data"]["notifications"]["edges"]] == [
        everything[2]["id"]
    ]

    with StatementCounter(database) as few:
        await notified(client, place.as_host, first=1)
    with StatementCounter(database) as many:
        await notified(client, place.as_host, first=3)
    assert many.count == few.count


async def test_a_payout_sent_tells_the_host_how_much(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    async with payout_stripe(app, clock) as stripe:
        place = await a_place(client)
        await ready_account(client, stripe, place)
        booking = await completed_stay(app, client, clock, place)
        clock.advance(days=1)  # a day after check-out, the host is paid
        await deliver(app)
        await deliver(app)  # the payout's own events
    [payout, *_] = await notified(client, place.as_host)
    assert payout["kind"] == "PAYOUT_SENT"
    assert payout["title"] == "€223.10 is on its way to you"
    assert payout["body"].endswith("stay at Alfama loft with a view, 21 Jan to 23 Jan 2027.")
    assert payout["booking"]["id"] == booking["id"]
    assert "PAYOUT_SENT" not in kinds(await notified(client, place.as_guest))


async def test_a_lapsed_hold_tells_the_guest_and_the_host_only_when_it_was_paid(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    unpaid = await booked(client, place, 1, 3)
    other = await another_guest(client, place)
    paid = await booked(client, other, 5, 7)
    await pay(client, other, paid["id"])
    clock.advance(days=2)  # past the unpaid hold and the host's 24 hours to answer
    await deliver(app)

    [lapsed] = await notified(client, place.as_guest)
    assert lapsed["kind"] == "BOOKING_CANCELED"
    assert lapsed["booking"]["id"] == unpaid["id"]
    assert lapsed["body"] == "Your stay 12 Jan to 14 Jan 2027 is canceled. Not paid in time."
    [unanswered] = await notified(client, other.as_guest)
    assert unanswered["kind"] == "BOOKING_CANCELED"
    assert unanswered["body"].endswith("The host did not answer in time.")  # the hold released
    # The host never saw the unpaid hold; they saw the paid request, and hear it lapsed.
    host = await notified(client, place.as_host)
    assert [(n["kind"], n["booking"]["id"]) for n in host] == [
        ("BOOKING_CANCELED", paid["id"]),
        ("BOOKING_REQUESTED", paid["id"]),
    ]
