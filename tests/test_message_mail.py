"""Mail about new messages to a recipient who is away: sent when the message is still unread
ROOST_MESSAGE_EMAIL_DELAY_SECONDS after it came, not when it was read (or answered) in time,
once for a burst of messages, and only to users who take news by email."""

import email
from dataclasses import replace
from datetime import timedelta
from email.message import Message
from urllib.parse import quote

import httpx
from starlette.applications import Starlette

from app.wiring import build_worker
from tests.accounts_helpers import bearer
from tests.booking_helpers import a_place
from tests.helpers import FakeClock, gql
from tests.messaging_helpers import choose, email_of

SEND = """
mutation($input: SendMessageInput!) { sendMessage(input: $input) { id thread { id } } }
"""
READ = "mutation($id: ID!) { markThreadRead(threadId: $id) { id unreadCount } }"
DELAY_MINUTES = 5  # the default of ROOST_MESSAGE_EMAIL_DELAY_SECONDS


async def send(client: httpx.AsyncClient, token: str, body: str, **target: str) -> str:
    """Sends a message; answers its thread's id."""
    answer = await gql(client, SEND, {"input": {"body": body, **target}}, headers=bearer(token))
    assert "errors" not in answer, answer
    thread_id: str = answer["data"]["sendMessage"]["thread"]["id"]
    return thread_id


async def mails_to(app: Starlette, address: str) -> list[Message]:
    """Every mail about messages sent to ``address`` so far (not the mail that confirms an
    address), once a worker pass has sent what is due."""
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    paths = sorted((app.state.settings.data_dir / "mail").glob("*.eml"))
    found = [email.message_from_bytes(path.read_bytes()) for path in paths]
    return [
        message
        for message in found
        if message["To"] == address and "-recipient@roost>" in (message["Message-ID"] or "")
    ]


def text_of(message: Message) -> str:
    [part] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def html_of(message: Message) -> str:
    [part] = [part for part in message.walk() if part.get_content_type() == "text/html"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_a_message_still_unread_after_the_delay_is_mailed_to_its_recipient(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client, title="Alfama <loft>")
    await choose(client, place.guest, firstName="Beatriz")
    host_email = await email_of(client, place.host)
    words = "Hello! Is the flat quiet at night? " + "We sleep lightly and travel with a baby. " * 8
    thread_id = await send(client, place.guest, words, listingId=place.listing_id)
    clock.advance(minutes=DELAY_MINUTES - 1)
    assert await mails_to(app, host_email) == []  # not yet: they may still read it
    clock.advance(minutes=1)
    [mail] = await mails_to(app, host_email)
    assert mail["Subject"] == "Beatriz sent you a message about Alfama <loft>"
    text = text_of(mail)
    assert "Beatriz wrote to you about Alfama <loft>:" in text
    # The first words, cut at a word, not the whole message.
    assert '"Hello! Is the flat quiet at night? We sleep lightly' in text
    assert words.strip() not in text
    assert "…" in text
    link = f"http://localhost:3000/messages/{quote(thread_id, safe='')}"
    assert link in text
    html = html_of(mail)
    assert "Alfama &lt;loft&gt;" in html
    assert f'href="{link}"' in html
    # The event is done: a later pass mails nothing more.
    clock.advance(hours=1)
    assert len(await mails_to(app, host_email)) == 1
    assert await mails_to(app, await email_of(client, place.guest)) == []  # the sender


async def test_no_mail_when_the_message_was_read_or_answered_in_time(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client)
    host_email = await email_of(client, place.host)
    guest_email = await email_of(client, place.guest)
    thread_id = await send(client, place.guest, "Is there parking?", listingId=place.listing_id)
    clock.advance(minutes=2)
    read = await gql(client, READ, {"id": thread_id}, headers=bearer(place.host))
    assert "errors" not in read, read
    clock.advance(minutes=DELAY_MINUTES)
    assert await mails_to(app, host_email) == []
    # Answering is reading too; the answer itself, unread, is mailed to the guest.
    await send(client, place.guest, "And a lift?", threadId=thread_id)
    clock.advance(minutes=1)
    await send(client, place.host, "Both, yes.", threadId=thread_id)
    clock.advance(minutes=DELAY_MINUTES)
    assert await mails_to(app, host_email) == []
    [mail] = await mails_to(app, guest_email)
    assert '"Both, yes."' in text_of(mail)


async def test_a_burst_of_messages_makes_one_mail_about_the_last(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client)
    host_email = await email_of(client, place.host)
    thread_id = await send(client, place.guest, "Hi!", listingId=place.listing_id)
    for body in ("We are two adults.", "Arriving late, around 23:00."):
        clock.advance(minutes=1)
        await send(client, place.guest, body, threadId=thread_id)
    clock.advance(minutes=DELAY_MINUTES - 1)  # the first two are due, the last is not yet
    assert await mails_to(app, host_email) == []
    clock.advance(minutes=1)
    [mail] = await mails_to(app, host_email)
    assert '"Arriving late, around 23:00."' in text_of(mail)
    clock.advance(hours=1)
    assert len(await mails_to(app, host_email)) == 1


async def test_no_mail_to_a_recipient_who_does_not_take_news_by_email(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client)
    await choose(client, place.host, channels=["IN_APP"])
    host_email = await email_of(client, place.host)
    await send(client, place.guest, "Hello?", listingId=place.listing_id)
    clock.advance(minutes=DELAY_MINUTES + 1)
    assert await mails_to(app, host_email) == []


async def test_the_delay_is_a_setting(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert app.state.settings.message_email_delay_seconds == DELAY_MINUTES * 60
    services = app.state.services
    assert services.message_email_delay == timedelta(minutes=DELAY_MINUTES)
    app.state.services = replace(services, message_email_delay=timedelta(hours=1))
    try:
        place = await a_place(client)
        host_email = await email_of(client, place.host)
        await send(client, place.guest, "Hello?", listingId=place.listing_id)
        clock.advance(minutes=59)
        assert await mails_to(app, host_email) == []
        clock.advance(minutes=1)
        assert len(await mails_to(app, host_email)) == 1
    finally:
        app.state.services = services
