"""Messages through HTTP: who may write where, one thread per guest, host and listing (even when
first messages race), unread counts and read markers, privacy, rate limits, and the cost of an
inbox."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.http import create_app
from app.settings import Settings
from app.wiring import build_worker
from db.database import Database
from db.models import Message, MessageThread, OutboxEvent, User
from tests.accounts_helpers import bearer, register
from tests.booking_helpers import Place, a_place, booked
from tests.helpers import FakeClock, StatementCounter, committed, gql, serving
from tests.listing_helpers import create

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { id body createdAt sender { id } thread { id } }
}
"""
READ = "mutation($id: ID!) { markThreadRead(threadId: $id) { id unreadCount } }"
THREADS = """
query($first: Int, $after: String) {
  messageThreads(first: $first, after: $after) {
    totalCount
    edges { cursor node {
      id unreadCount listing { id } booking { id }
      participants { id firstName }
      lastMessage { id body sender { id } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
THREAD = """
query($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on MessageThread {
      id unreadCount
      messages(first: $first, after: $after) {
        totalCount edges { node { id body } } pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""
NODE_MESSAGE = "query($id: ID!) { node(id: $id) { ... on Message { id body } } }"


def code_of(body: dict) -> str:
    assert "errors" in body, body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def fields_of(body: dict) -> dict[str, str]:
    fields: dict[str, str] = body["errors"][0]["extensions"].get("fields", {})
    return fields


async def send(client: httpx.AsyncClient, token: str, body: str = "Hello!", **target: str) -> dict:
    return await gql(client, SEND, {"input": {"body": body, **target}}, headers=bearer(token))


async def sent(client: httpx.AsyncClient, token: str, body: str = "Hello!", **target: str) -> dict:
    answer = await send(client, token, body, **target)
    assert "errors" not in answer, answer
    return answer["data"]["sendMessage"]


async def threads(client: httpx.AsyncClient, token: str, **variables: object) -> dict:
    body = await gql(client, THREADS, variables, headers=bearer(token))
    assert "errors" not in body, body
    return body["data"]["messageThreads"]


async def thread_of(client: httpx.AsyncClient, token: str, thread_id: str) -> dict | None:
    body = await gql(client, THREAD, {"id": thread_id}, headers=bearer(token))
    assert "errors" not in body, body
    return body["data"]["node"]


async def unread(client: httpx.AsyncClient, token: str) -> list[int]:
    return [edge["node"]["unreadCount"] for edge in (await threads(client, token))["edges"]]


@contextmanager
def messages_per_minute(app: Starlette, allowed: int) -> Iterator[None]:
    services = app.state.services
    app.state.services = replace(services, messages_per_minute=allowed)
    try:
        yield
    finally:
        app.state.services = replace(
            app.state.services, messages_per_minute=services.messages_per_minute
        )


async def test_a_guest_asks_a_host_and_the_host_answers_in_the_same_thread(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    question = await sent(client, place.guest, "  Is it quiet?\n", listingId=place.listing_id)
    assert question["body"] == "Is it quiet?"  # trimmed
    thread_id = question["thread"]["id"]
    clock.advance(minutes=1)
    answer = await sent(client, place.host, "Very.", threadId=thread_id)
    assert answer["thread"]["id"] == thread_id
    clock.advance(minutes=1)
    again = await sent(client, place.guest, "Great!", listingId=place.listing_id)
    assert again["thread"]["id"] == thread_id  # one thread per guest, host and listing

    [edge] = (await threads(client, place.host))["edges"]
    node = edge["node"]
    assert node["id"] == thread_id and node["listing"]["id"] == place.listing_id
    assert node["lastMessage"]["body"] == "Great!" and node["booking"] is None
    [guest, host] = node["participants"]
    assert guest["id"] == question["sender"]["id"] and host["id"] == answer["sender"]["id"]
    page = await thread_of(client, place.guest, thread_id)
    assert page is not None
    assert [e["node"]["body"] for e in page["messages"]["edges"]] == [
        "Great!",
        "Very.",
        "Is it quiet?",
    ]
    # Each message is news for the other side only.
    async with committed(database) as session:
        events = (
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.kind == "MessageReceived")
                .order_by(OutboxEvent.id)
            )
        ).all()
    recipients = [event.payload["recipient_id"] for event in events]
    senders = [event.payload["sender_id"] for event in events]
    guest_id, host_id = senders[0], senders[1]
    assert senders == [guest_id, host_id, guest_id] and guest_id != host_id
    assert recipients == [host_id, guest_id, host_id]


async def test_unread_counts_rise_for_the_recipient_and_reading_resets_them(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    first = await sent(client, place.guest, "One", listingId=place.listing_id)
    thread_id = first["thread"]["id"]
    await sent(client, place.guest, "Two", threadId=thread_id)
    assert await unread(client, place.host) == [2]
    assert await unread(client, place.guest) == [0]  # not the sender

    read = await gql(client, READ, {"id": thread_id}, headers=place.as_host)
    assert read["data"]["markThreadRead"] == {"id": thread_id, "unreadCount": 0}
    assert await unread(client, place.host) == [0]

    await sent(client, place.host, "Three", threadId=thread_id)
    assert await unread(client, place.guest) == [1]
    assert await unread(client, place.host) == [0]  # writing is reading
    await sent(client, place.guest, "Four", threadId=thread_id)
    assert await unread(client, place.guest) == [0]
    assert await unread(client, place.host) == [1]


async def test_nobody_else_reads_or_writes_a_thread(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    message = await sent(client, place.guest, "Private", listingId=place.listing_id)
    thread_id = message["thread"]["id"]
    stranger = (await register(client))["accessToken"]
    admin = (await register(client))["accessToken"]
    async with committed(database) as session:
        user = (await session.scalars(select(User).order_by(User.id.desc()).limit(1))).one()
        user.roles = [*user.roles, "ADMIN"]

    for token in (stranger, admin):
        assert code_of(await send(client, token, "Hi", threadId=thread_id)) == "NOT_FOUND"
        assert code_of(await gql(client, READ, {"id": thread_id}, headers=bearer(token))) == (
            "NOT_FOUND"
        )
        assert await thread_of(client, token, thread_id) is None
        body = await gql(client, NODE_MESSAGE, {"id": message["id"]}, headers=bearer(token))
        assert body["data"]["node"] is None
        assert (await threads(client, token))["edges"] == []
    # The participants do see it.
    body = await gql(client, NODE_MESSAGE, {"id": message["id"]}, headers=place.as_host)
    assert body["data"]["node"]["body"] == "Private"
    # A thread's id and a missing one answer alike: nothing leaks.
    missing = "TWVzc2FnZVRocmVhZDo5OTk5"  # MessageThread:9999
    assert code_of(await send(client, stranger, "Hi", threadId=missing)) == "NOT_FOUND"
    # Signed out: nothing at all.
    assert code_of(await gql(client, THREADS, {})) == "UNAUTHENTICATED"


async def test_a_booking_links_its_thread_and_only_its_guest_and_host_write_about_it(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    asked = await sent(client, place.guest, "Before booking", listingId=place.listing_id)
    booking = await booked(client, place, 3, 5)
    clock.advance(minutes=1)
    from_host = await sent(client, place.host, "See you soon", bookingId=booking["id"])
    assert from_host["thread"]["id"] == asked["thread"]["id"]
    [edge] = (await threads(client, place.guest))["edges"]
    assert edge["node"]["booking"]["id"] == booking["id"]
    assert edge["node"]["unreadCount"] == 1

    stranger = (await register(client))["accessToken"]
    assert code_of(await send(client, stranger, "Hi", bookingId=booking["id"])) == "NOT_FOUND"

    # A booking's host may start the thread too.
    other = Place(place.listing_id, place.host, (await register(client))["accessToken"])
    theirs = await booked(client, other, 6, 8)
    started = await sent(client, other.host, "Welcome", bookingId=theirs["id"])
    assert started["thread"]["id"] != asked["thread"]["id"]
    assert await unread(client, other.guest) == [1]


async def test_bodies_and_targets_are_checked(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    listing = {"listingId": place.listing_id}
    for body, problem in [
        ("   ", "must not be empty"),
        ("x" * 5001, "at most 5000"),
        ("bell\x07", "control characters"),
        ("nul\x00", "control characters"),
    ]:
        answer = await send(client, place.guest, body, **listing)
        assert code_of(answer) == "BAD_USER_INPUT" and problem in fields_of(answer)["body"]
    longest = "x" * 4992 + "\n\ttab ok"  # 5000 characters, once trimmed
    assert "errors" not in await send(client, place.guest, f"  {longest}  ", **listing)

    none = await send(client, place.guest, "Hi")
    assert code_of(none) == "BAD_USER_INPUT" and "exactly one" in fields_of(none)["threadId"]
    two = await send(client, place.guest, "Hi", bookingId=place.listing_id, **listing)
    assert code_of(two) == "BAD_USER_INPUT"
    wrong_kind = await send(client, place.guest, "Hi", threadId=place.listing_id)
    assert code_of(wrong_kind) == "BAD_USER_INPUT" and "threadId" in fields_of(wrong_kind)

    own = await send(client, place.host, "Me?", **listing)
    assert code_of(own) == "BAD_USER_INPUT" and "own listing" in fields_of(own)["listingId"]
    async with committed(database) as session:
        assert await session.scalar(select(func.count()).select_from(MessageThread)) == 1


async def test_unpublished_and_deleted_listings_cannot_be_messaged_about(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    draft = await create(client, place.host, publish=False)
    assert code_of(await send(client, place.guest, listingId=draft["id"])) == "NOT_FOUND"

    thread = (await sent(client, place.guest, listingId=place.listing_id))["thread"]["id"]
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteListing(id: $id) }",
        {"id": place.listing_id},
        headers=place.as_host,
    )
    assert "errors" not in deleted, deleted
    late = (await register(client))["accessToken"]
    assert code_of(await send(client, late, listingId=place.listing_id)) == "NOT_FOUND"
    # A conversation already started goes on; its listing is no longer shown.
    await sent(client, place.host, "It is gone, sorry", threadId=thread)
    [edge] = (await threads(client, place.guest))["edges"]
    assert edge["node"]["listing"] is None and edge["node"]["unreadCount"] == 1


RACERS = 8
ROUNDS = 3


async def race(client: httpx.AsyncClient, guest: str, listing_id: str) -> list[dict]:
    """The guest's first messages about the listing, all released at once."""
    go = asyncio.Event()

    async def attempt(n: int) -> dict:
        await go.wait()
        return await send(client, guest, f"Hi {n}", listingId=listing_id)

    tasks = [asyncio.create_task(attempt(n)) for n in range(RACERS)]
    await asyncio.sleep(0.05)  # every request waits at the gate
    go.set()
    return await asyncio.gather(*tasks)


async def test_racing_first_messages_make_one_thread(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    """A guest's first messages about a listing, released at once through a real server: one
    thread holds them all."""
    place = await a_place(client)
    rounds = [place.listing_id, *[(await create(client, place.host))["id"] for _ in range(2)]]
    async with serving(create_app(settings)) as base_url:
        limits = httpx.Limits(max_connections=RACERS)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as served:
            for listing_id in rounds:
                guest = (await register(client))["accessToken"]
                answers = await race(served, guest, listing_id)
                assert all("errors" not in answer for answer in answers), answers
                made = {answer["data"]["sendMessage"]["thread"]["id"] for answer in answers}
                assert len(made) == 1
    async with committed(database) as session:
        assert await session.scalar(select(func.count()).select_from(MessageThread)) == ROUNDS
        assert await session.scalar(select(func.count()).select_from(Message)) == ROUNDS * RACERS
        unread = (await session.scalars(select(MessageThread.host_unread))).all()
        assert unread == [RACERS] * ROUNDS


async def test_sending_is_rate_limited_per_account(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    with messages_per_minute(app, 2):
        # Refused attempts count too: trying is what is limited.
        assert code_of(await send(client, place.guest, " ", listingId=place.listing_id)) == (
            "BAD_USER_INPUT"
        )
        await sent(client, place.guest, listingId=place.listing_id)
        limited = await send(client, place.guest, listingId=place.listing_id)
        assert code_of(limited) == "RATE_LIMITED"
        # Another account has its own budget.
        thread = (await threads(client, place.host))["edges"][0]["node"]["id"]
        await sent(client, place.host, threadId=thread)


async def test_pages_of_threads_and_messages(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    guest = place.guest
    ids = []
    for _ in range(3):
        created = await create(client, place.host)
        ids.append((await sent(client, guest, listingId=created["id"]))["thread"]["id"])
        clock.advance(minutes=1)
    first = await threads(client, guest, first=2)
    assert [e["node"]["id"] for e in first["edges"]] == [ids[2], ids[1]]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"]
    rest = await threads(client, guest, first=2, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["edges"]] == [ids[0]]
    # New activity moves a thread to the top.
    await sent(client, place.host, threadId=ids[0])
    assert (await threads(client, guest))["edges"][0]["node"]["id"] == ids[0]

    for n in range(3):
        await sent(client, guest, f"m{n}", threadId=ids[1])
    body = await gql(client, THREAD, {"id": ids[1], "first": 2}, headers=bearer(guest))
    page = body["data"]["node"]["messages"]
    assert [e["node"]["body"] for e in page["edges"]] == ["m2", "m1"]
    after = page["pageInfo"]["endCursor"]
    body = await gql(client, THREAD, {"id": ids[1], "after": after}, headers=bearer(guest))
    assert [e["node"]["body"] for e in body["data"]["node"]["messages"]["edges"]] == [
        "m0",
        "Hello!",
    ]
    too_many = await gql(client, THREAD, {"id": ids[1], "first": 101}, headers=bearer(guest))
    assert code_of(too_many) == "BAD_USER_INPUT"
    bad_cursor = await threads_error(client, guest, after="nope")
    assert code_of(bad_cursor) == "BAD_USER_INPUT"


async def threads_error(client: httpx.AsyncClient, token: str, **variables: object) -> dict:
    return await gql(client, THREADS, variables, headers=bearer(token))


async def test_an_inbox_costs_the_same_few_statements_for_any_number_of_threads(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)

    async def statements() -> int:
        with StatementCounter(database) as counter:
            await threads(client, place.host, first=20)
        return counter.count

    await sent(client, place.guest, listingId=place.listing_id)
    one = await statements()
    for _ in range(5):
        guest = (await register(client))["accessToken"]
        await sent(client, guest, listingId=place.listing_id)
    assert len((await threads(client, place.host))["edges"]) == 6
    # The viewer, the page, its count, the participants, the last messages and the listings.
    assert await statements() == one == 6, one


async def test_a_message_is_news_in_the_app_for_the_other_side_only(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    place = await a_place(client)
    await sent(client, place.guest, "Is   there\na crib?", listingId=place.listing_id)
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    told = "{ notifications { edges { node { kind title body booking { id } } } } }"
    host = await gql(client, told, headers=place.as_host)
    [news] = [edge["node"] for edge in host["data"]["notifications"]["edges"]]
    assert news["kind"] == "MESSAGE_RECEIVED"
    assert news["title"].endswith(" wrote about Alfama loft with a view")
    assert (news["body"], news["booking"]) == ("Is there a crib?", None)
    guest = await gql(client, told, headers=place.as_guest)
    assert guest["data"]["notifications"]["edges"] == []
