"""Subscriptions over graphql-transport-ws through a real uvicorn: notifications as they are
made, a booking's changes, a thread's messages; sign-in in connection_init; a connection that
ends with its session or its token; the protocol's close codes and the per-connection limit."""

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from db.database import Database
from tests.accounts_helpers import register
from tests.booking_helpers import ACCEPT, a_place, booked, pay
from tests.helpers import gql
from tests.live_helpers import Live, live_roost, raw_socket, socket

NOTIFICATIONS = "subscription { notifications { id kind title body read booking { id status } } }"
BOOKING_UPDATED = "subscription($id: ID!) { bookingUpdated(id: $id) { id status } }"
MESSAGE_RECEIVED = """
subscription($thread: ID) { messageReceived(threadId: $thread) { id body sender { firstName } } }
"""
SEND = """
mutation($input: SendMessageInput!) { sendMessage(input: $input) { id thread { id } } }
"""
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"


@pytest.fixture
async def live(database_url: str, database: Database) -> AsyncIterator[Live]:
    async with live_roost(database_url) as started:
        yield started


async def test_a_host_hears_of_a_request_within_a_second_and_nobody_else_does(
    live: Live, client: httpx.AsyncClient
) -> None:
    place = await a_place(client, instantBook=False)
    bystander = await a_place(client, instantBook=False)
    host_id = (await gql(client, "{ me { id } }", headers=place.as_host))["data"]["me"]["id"]
    async with (
        socket(live.ws_url, place.host) as host,
        socket(live.ws_url, bystander.host) as other_host,
        socket(live.ws_url, place.guest) as guest,
    ):
        heard = await host.subscribe(NOTIFICATIONS)
        unheard = await other_host.subscribe(NOTIFICATIONS)
        await guest.subscribe(NOTIFICATIONS)
        await live.until_listening(f"notifications:{_number(host_id)}")
        booking = await booked(client, place, 5, 8)
        await pay(client, place, booking["id"])
        paid_at = time.monotonic()
        notification = (await host.next_data(heard, within=1))["notifications"]
        assert time.monotonic() - paid_at < 1
        assert notification["kind"] == "BOOKING_REQUESTED"
        assert notification["read"] is False
        assert notification["booking"] == {"id": booking["id"], "status": "PENDING"}
        # The card is only held: nothing for the guest yet, and nothing for the other host.
        for bystanding in (guest, other_host):
            with pytest.raises(TimeoutError):
                await bystanding.receive(within=0.5)
        assert unheard


async def test_an_anonymous_subscription_is_refused(live: Live) -> None:
    async with socket(live.ws_url) as anonymous:
        operation = await anonymous.subscribe(NOTIFICATIONS)
        [error] = await anonymous.refused(operation)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("credential", ["Bearer not-a-token", "Basic abc", "Bearer ", 42])
async def test_a_bad_credential_in_connection_init_closes_with_4401(
    live: Live, credential: object
) -> None:
    async with raw_socket(live.ws_url) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": credential}})
        assert await ws.closed_with() == 4401


async def test_an_expired_token_is_refused_and_a_connection_ends_with_its_token(
    database_url: str, client: httpx.AsyncClient
) -> None:
    async with live_roost(database_url, websocket_token_grace_seconds=0.5) as live:
        await _ends_with_its_token(live, client)


async def _ends_with_its_token(live: Live, client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = live.app.state.services.session_policy.access_tokens
    claims = tokens.decode(user["accessToken"])

    def token_expiring_in(seconds: float) -> str:
        issued = datetime.now(UTC) - tokens.lifetime + timedelta(seconds=seconds)
        return tokens.issue(claims.user_id, claims.roles, session_id=claims.session_id, now=issued)

    async with raw_socket(live.ws_url) as ws:
        expired = f"Bearer {token_expiring_in(-1)}"
        await ws.send({"type": "connection_init", "payload": {"authorization": expired}})
        assert await ws.closed_with() == 4401

    # Tokens say when they expire to the second: this one lives 1 to 2 seconds more.
    async with socket(live.ws_url, token_expiring_in(2)) as short:
        await short.subscribe(NOTIFICATIONS)
        started = time.monotonic()
        assert await short.closed_with(within=5) == 4403  # graphql-ws reconnects on it
        assert 1.4 <= time.monotonic() - started < 4

    # A fresher token in a ping keeps the connection past the first one's lifetime.
    async with socket(live.ws_url, token_expiring_in(2)) as renewed:
        await renewed.send(
            {"type": "ping", "payload": {"authorization": f"Bearer {token_expiring_in(60)}"}}
        )
        assert (await renewed.receive())["type"] == "pong"
        await asyncio.sleep(3)
        await renewed.send({"type": "ping"})
        assert (await renewed.receive())["type"] == "pong"
        # Another user's token is no renewal.
        stranger = (await register(client))["accessToken"]
        await renewed.send({"type": "ping", "payload": {"authorization": f"Bearer {stranger}"}})
        assert await renewed.closed_with() == 4401


async def test_signing_out_ends_the_sessions_subscriptions(
    live: Live, client: httpx.AsyncClient
) -> None:
    user = await register(client)
    async with socket(live.ws_url, user["accessToken"]) as ws:
        await ws.subscribe(NOTIFICATIONS)
        await live.until_listening(f"notifications:{_number(user['user']['id'])}")
        assert await gql(client, LOGOUT, {"t": user["refreshToken"]}) == {"data": {"logout": True}}
        assert await ws.closed_with(within=3) == 4401
    # And the token is refused from then on.
    async with raw_socket(live.ws_url) as ws:
        bearer = f"Bearer {user['accessToken']}"
        await ws.send({"type": "connection_init", "payload": {"authorization": bearer}})
        assert await ws.closed_with() == 4401


async def test_a_booking_is_followed_by_its_guest_and_host_only(
    live: Live, client: httpx.AsyncClient
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 5, 8)
    await pay(client, place, booking["id"])
    stranger = (await register(client))["accessToken"]
    async with socket(live.ws_url, stranger) as ws:
        operation = await ws.subscribe(BOOKING_UPDATED, {"id": booking["id"]})
        [error] = await ws.refused(operation)
    assert error["extensions"]["code"] == "NOT_FOUND"

    await live.until_idle()  # the payment's news is out before the guest listens
    async with socket(live.ws_url, place.guest) as guest:
        operation = await guest.subscribe(BOOKING_UPDATED, {"id": booking["id"]})
        await live.until_listening(f"booking:{_number(booking['id'])}")
        accepted = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
        assert "errors" not in accepted, accepted
        seen = (await guest.next_data(operation))["bookingUpdated"]
        assert seen == {"id": booking["id"], "status": "CONFIRMED"}


async def test_messages_reach_both_sides_of_their_thread_only(
    live: Live, client: httpx.AsyncClient
) -> None:
    place = await a_place(client)
    host_id = (await gql(client, "{ me { id } }", headers=place.as_host))["data"]["me"]["id"]
    stranger = (await register(client))["accessToken"]
    async with (
        socket(live.ws_url, place.host) as host,
        socket(live.ws_url, place.guest) as guest,
        socket(live.ws_url, stranger) as outsider,
    ):
        everything = await host.subscribe(MESSAGE_RECEIVED)
        overheard = await outsider.subscribe(MESSAGE_RECEIVED)
        await live.until_listening(f"messages:{_number(host_id)}")
        first = await gql(
            client,
            SEND,
            {"input": {"listingId": place.listing_id, "body": "Is there parking?"}},
            headers=place.as_guest,
        )
        thread_id = first["data"]["sendMessage"]["thread"]["id"]
        heard = (await host.next_data(everything))["messageReceived"]
        assert heard == {
            "id": first["data"]["sendMessage"]["id"],
            "body": "Is there parking?",
            "sender": {"firstName": "Ana"},
        }

        other_thread = await outsider.subscribe(MESSAGE_RECEIVED, {"thread": thread_id})
        [error] = await outsider.refused(other_thread)
        assert error["extensions"]["code"] == "NOT_FOUND"

        in_thread = await guest.subscribe(MESSAGE_RECEIVED, {"thread": thread_id})
        await live.until_listening(f"messages:{_number(host_id)}", 1)
        await asyncio.sleep(0.1)  # the guest's subscription reaches its channel
        for body, headers in [("Yes, one space.", place.as_host), ("Thanks!", place.as_guest)]:
            sent = await gql(
                client, SEND, {"input": {"threadId": thread_id, "body": body}}, headers=headers
            )
            assert "errors" not in sent, sent
        bodies = [(await guest.next_data(in_thread))["messageReceived"]["body"] for _ in range(2)]
        # The guest's own message too: their other devices show the conversation whole.
        assert bodies == ["Yes, one space.", "Thanks!"]
        with pytest.raises(TimeoutError):
            await outsider.receive(within=0.5)
        assert overheard


async def test_the_protocols_close_codes(live: Live, client: httpx.AsyncClient) -> None:
    token = (await register(client))["accessToken"]
    async with raw_socket(live.ws_url) as ws:
        await ws.subscribe("{ __typename }")
        assert await ws.closed_with() == 4401  # subscribe before connection_init
    async with socket(live.ws_url, token) as ws:
        await ws.send({"type": "connection_init", "payload": {}})
        assert await ws.closed_with() == 4429
    async with socket(live.ws_url, token) as ws:
        await ws.send({"type": "nonsense"})
        assert await ws.closed_with() == 4400
    async with socket(live.ws_url, token) as ws:
        await ws.ws.send("{not json")
        assert await ws.closed_with() == 4400
    for bad in [{"id": 7, "payload": {"query": "{ __typename }"}}, {"id": "1", "payload": []}]:
        async with socket(live.ws_url, token) as ws:
            await ws.send({"type": "subscribe", **bad})
            assert await ws.closed_with() == 4400
    async with socket(live.ws_url, token) as ws:
        await ws.send({"type": "subscribe", "id": "a", "payload": {"query": NOTIFICATIONS}})
        await ws.send({"type": "subscribe", "id": "a", "payload": {"query": NOTIFICATIONS}})
        assert await ws.closed_with() == 4409


async def test_a_connection_holds_a_bounded_number_of_subscriptions(
    live: Live, client: httpx.AsyncClient
) -> None:
    token = (await register(client))["accessToken"]
    limit = live.app.state.settings.max_subscriptions_per_connection
    async with socket(live.ws_url, token) as ws:
        for _ in range(limit):
            await ws.subscribe(NOTIFICATIONS)
        over = await ws.subscribe(NOTIFICATIONS)
        refused = await ws.receive()
        assert refused["id"] == over
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Completing one makes room.
        await ws.send({"type": "complete", "id": str(int(over) - 1)})
        again = await ws.subscribe("{ __typename }")
        assert await ws.next_data(again) == {"__typename": "Query"}


async def test_a_page_of_another_origin_cannot_open_a_websocket(live: Live) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with raw_socket(live.ws_url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    allowed = live.app.state.settings.cors_origins[0]
    async with socket(live.ws_url, origin=allowed) as ws:
        await ws.send({"type": "ping"})
        assert (await ws.receive())["type"] == "pong"


def _number(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":")[1])


HOSTILE_FRAMES = [
    "[]",
    "1",
    '"connection_init"',
    "null",
    '{"type": 5}',
    '{"type": ["subscribe"]}',
    '{"type": "complete"}',
    '{"type": "complete", "id": [1]}',
    '{"type": "complete", "id": {"a": 1}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 5}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", "variables": []}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ a }", "operationName": 1}}',
    '{"type": "subscribe", "id": "' + "x" * 200 + '", "payload": {"query": "{ __typename }"}}',
    '{"type": "ping", "payload": {"authorization": 7}}',
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES)
async def test_a_hostile_frame_closes_the_connection_cleanly(
    live: Live, client: httpx.AsyncClient, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = (await register(client))["accessToken"]
    with caplog.at_level(logging.ERROR):
        async with socket(live.ws_url, token) as ws:
            await ws.ws.send(frame)
            code = await ws.closed_with()
    assert code in {4400, 4401}, code
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


THREAD_NEWS = """
subscription { messageReceived { body thread { unreadCount lastMessage { body } } } }
"""


@pytest.mark.parametrize("fan_out", ["in process", "redis"])
async def test_each_side_of_a_thread_hears_a_message_as_itself(
    database_url: str, database: Database, client: httpx.AsyncClient, fan_out: str
) -> None:
    # In process, one message object reaches both sides' channels, and identical operations
    # of one viewer share one execution: the other viewer must still get their own answer.
    settings = {"redis_url": None} if fan_out == "in process" else {}
    async with live_roost(database_url, **settings) as live:
        place = await a_place(client)
        first = await gql(
            client,
            SEND,
            {"input": {"listingId": place.listing_id, "body": "Hello"}},
            headers=place.as_guest,
        )
        thread_id = first["data"]["sendMessage"]["thread"]["id"]
        await live.until_idle()
        async with (
            socket(live.ws_url, place.guest) as guest,
            socket(live.ws_url, place.guest) as guests_laptop,
            socket(live.ws_url, place.host) as host,
        ):
            operations = [
                (ws, await ws.subscribe(THREAD_NEWS)) for ws in (guest, guests_laptop, host)
            ]
            host_id = (await gql(client, "{ me { id } }", headers=place.as_host))["data"]["me"]
            await live.until_listening(f"messages:{_number(host_id['id'])}")
            sent = await gql(
                client,
                SEND,
                {"input": {"threadId": thread_id, "body": "Hi!"}},
                headers=place.as_host,
            )
            assert "errors" not in sent, sent
            heard = [
                (await ws.next_data(operation))["messageReceived"] for ws, operation in operations
            ]
    thread = {"lastMessage": {"body": "Hi!"}}
    assert heard == [
        {"body": "Hi!", "thread": {"unreadCount": 1, **thread}},  # the guest has not read it
        {"body": "Hi!", "thread": {"unreadCount": 1, **thread}},
        {"body": "Hi!", "thread": {"unreadCount": 0, **thread}},  # the host wrote it
    ]
