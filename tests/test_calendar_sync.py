"""Calendar sync (iCalendar, RFC 5545): each listing's secret feed of its taken nights, and
other sites' feeds a listing imports, served here by a local HTTP server."""

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

import httpx
import icalendar
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.wiring import build_worker
from db.database import Database
from db.models import AuditEntry
from gateways.calendar_feeds import FeedFetcher
from tests.accounts_helpers import bearer, register
from tests.admin_helpers import NOTIFICATIONS
from tests.booking_helpers import TODAY, Place, a_place, book, booked, day, read
from tests.helpers import FakeClock, gql, serving
from tests.listing_helpers import BLOCK
from tests.receipt_helpers import an_admin

pytestmark = pytest.mark.usefixtures("clock")

EXPORT_URL = "query($id: ID!) { listing(id: $id) { calendarExportUrl } }"
ROTATE = "mutation($id: ID!) { rotateCalendarExportUrl(listingId: $id) }"
UNBLOCK = (
    "mutation($id: ID!, $f: Date!, $t: Date!) { unblockDates(listingId: $id, from: $f, to: $t) }"
)


async def block(client: httpx.AsyncClient, place: Place, start: int, end: int) -> None:
    body = await gql(
        client,
        BLOCK,
        {"id": place.listing_id, "f": day(start), "t": day(end)},
        headers=place.as_host,
    )
    assert "errors" not in body, body


async def export_path(client: httpx.AsyncClient, place: Place) -> str:
    body = await gql(client, EXPORT_URL, {"id": place.listing_id}, headers=place.as_host)
    assert "errors" not in body, body
    url = body["data"]["listing"]["calendarExportUrl"]
    assert url.startswith("http://127.0.0.1:8000/calendar/") and url.endswith(".ics")
    return urlsplit(url).path


def events(body: bytes) -> list[tuple[str, date, date, str]]:
    calendar = icalendar.Calendar.from_ical(body)
    return sorted(
        (
            (
                str(event["SUMMARY"]),
                event.decoded("DTSTART"),
                event.decoded("DTEND"),
                str(event["UID"]),
            )
            for event in calendar.walk("VEVENT")
        ),
        key=lambda found: (found[1], found[3]),
    )


def nights_of(found: list[tuple[str, date, date, str]]) -> set[date]:
    return {
        start + timedelta(days=offset)
        for _, start, end, _ in found
        for offset in range((end - start).days)
    }


def offsets(*ranges: tuple[int, int]) -> set[date]:
    return {TODAY + timedelta(days=n) for start, end in ranges for n in range(start, end)}


async def test_the_feed_shows_booked_and_closed_nights_and_nothing_personal(
    client: httpx.AsyncClient,
) -> None:
    place = await a_place(client)
    await block(client, place, 5, 7)
    await block(client, place, 7, 9)  # one range with the nights before it
    await block(client, place, 20, 21)
    await booked(client, place, 10, 13)
    path = await export_path(client, place)

    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    body = response.content
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["VERSION"]) == "2.0" and "Roost" in str(calendar["PRODID"])
    found = events(body)
    assert [(summary, start, end) for summary, start, end, _ in found] == [
        ("Not available", TODAY + timedelta(days=5), TODAY + timedelta(days=9)),
        ("Reserved", TODAY + timedelta(days=10), TODAY + timedelta(days=13)),
        ("Not available", TODAY + timedelta(days=20), TODAY + timedelta(days=21)),
    ]
    for event in calendar.walk("VEVENT"):
        assert event["DTSTART"].params.get("VALUE") == "DATE"
        assert event["DTEND"].params.get("VALUE") == "DATE"
        assert "DTSTAMP" in event
        assert set(event) <= {"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "TRANSP"}
    assert b"Lisbon" not in body and b"@example" not in body  # no guest, no place, no people

    # The same UIDs on every read, so importers update events rather than duplicate them.
    assert events((await client.get(path)).content) == found


async def test_past_nights_are_left_out(client: httpx.AsyncClient, clock: FakeClock) -> None:
    place = await a_place(client)
    await block(client, place, 1, 3)
    await block(client, place, 6, 7)
    path = await export_path(client, place)
    clock.advance(days=4)

    found = events((await client.get(path)).content)

    assert nights_of(found) == offsets((6, 7))


async def test_conditional_requests_are_answered_304_until_the_calendar_changes(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    place = await a_place(client)
    await block(client, place, 3, 5)
    path = await export_path(client, place)
    first = await client.get(path)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    clock.advance(minutes=5)

    unchanged = await client.get(path, headers={"If-None-Match": etag})
    not_since = await client.get(path, headers={"If-Modified-Since": last_modified})
    assert (unchanged.status_code, not_since.status_code) == (304, 304)
    assert unchanged.content == b"" and unchanged.headers["etag"] == etag
    assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200

    await block(client, place, 8, 9)
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.headers["last-modified"] == format_datetime(clock.now, usegmt=True)
    assert (await client.get(path, headers={"If-Modified-Since": last_modified})).status_code == 200

    body = await gql(
        client, UNBLOCK, {"id": place.listing_id, "f": day(8), "t": day(9)}, headers=place.as_host
    )
    assert "errors" not in body, body
    assert nights_of(events((await client.get(path)).content)) == offsets((3, 5))


async def test_rotating_ends_the_old_url_at_once(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    old = await export_path(client, place)
    assert (await client.get(old)).status_code == 200
    assert await export_path(client, place) == old  # the same URL until rotated

    body = await gql(client, ROTATE, {"id": place.listing_id}, headers=place.as_host)

    assert "errors" not in body, body
    new = urlsplit(body["data"]["rotateCalendarExportUrl"]).path
    assert new != old and await export_path(client, place) == new
    gone = await client.get(old)
    assert gone.status_code == 404
    assert gone.json() == {"error": {"code": "NOT_FOUND", "message": "No such calendar."}}
    assert (await client.get(new)).status_code == 200


async def test_unknown_tokens_are_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/calendar/" + "A" * 43 + ".ics", "/calendar/short.ics"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_only_the_host_and_admins_see_or_rotate_the_url(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    stranger = (await register(client, role="HOST"))["accessToken"]
    for headers in (place.as_guest, bearer(stranger), None):
        body = await gql(client, EXPORT_URL, {"id": place.listing_id}, headers=headers)
        assert body["data"]["listing"] == {"calendarExportUrl": None}, body
    rotated = await gql(client, ROTATE, {"id": place.listing_id}, headers=bearer(stranger))
    assert rotated["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql(client, ROTATE, {"id": place.listing_id})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_admin_sees_and_rotates_the_url_audited(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    old = await export_path(client, place)
    admin = await an_admin(client, database)
    seen = await gql(client, EXPORT_URL, {"id": place.listing_id}, headers=admin)
    assert urlsplit(seen["data"]["listing"]["calendarExportUrl"]).path == old

    rotated = await gql(client, ROTATE, {"id": place.listing_id}, headers=admin)

    assert urlsplit(rotated["data"]["rotateCalendarExportUrl"]).path != old
    async with database.read_session() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions == ["listing.rotate_calendar_export_url"]


async def test_the_feed_is_rate_limited_per_listing(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    path = await export_path(client, place)
    statuses = [(await client.get(path)).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30
    limited = await client.get(path)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["code"] == "RATE_LIMITED"


# Importing.

ADD = """
mutation($id: ID!, $url: String!, $name: String!) {
  addCalendarImport(listingId: $id, url: $url, name: $name) {
    id name url nights conflicts { from to } lastSuccessAt lastError
  }
}
"""
REMOVE = "mutation($id: ID!) { removeCalendarImport(id: $id) }"
SEARCH = (
    "query($filter: ListingFilter) { searchListings(filter: $filter) { edges { node { id } } } }"
)
IMPORTS = """
query($id: ID!) {
  listing(id: $id) {
    calendarImports {
      id name url nights conflicts { from to } lastFetchedAt lastSuccessAt lastError
    }
    calendar(from: "2027-01-11", to: "2027-03-01") { date available }
  }
}
"""


def ics(*events: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Elsewhere//Test//EN"]
    for number, event in enumerate(events):
        lines += ["BEGIN:VEVENT", f"UID:{number}@elsewhere", "DTSTAMP:20270101T000000Z"]
        lines += event.split("|")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def all_day(start: int, end: int) -> str:
    first, last = TODAY + timedelta(days=start), TODAY + timedelta(days=end)
    return f"DTSTART;VALUE=DATE:{first:%Y%m%d}|DTEND;VALUE=DATE:{last:%Y%m%d}|SUMMARY:Booked"


class FeedServer:
    """Another site: feeds by name, editable, and each may be made to misbehave."""

    def __init__(self) -> None:
        self.feeds: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.answers: list[int] = []
        self.base = ""

    async def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        mode = self.modes.get(name)
        if mode == "huge":
            return StreamingResponse(self._huge(), media_type="text/calendar")
        if mode == "slow":
            return StreamingResponse(self._slow(), media_type="text/calendar")
        if mode == "loop":
            return Response(status_code=302, headers={"Location": f"/feeds/{name}"})
        body = self.feeds.get(name)
        if body is None or mode == "gone":
            return Response(status_code=404)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            self.answers.append(304)
            return Response(status_code=304, headers={"ETag": etag})
        self.answers.append(200)
        return Response(body, media_type="text/calendar", headers={"ETag": etag})

    async def _huge(self) -> AsyncIterator[bytes]:
        yield ics(all_day(1, 3))[: -len(b"END:VCALENDAR\r\n")]
        for _ in range(4096):  # 4 MiB, the calendar never ended
            yield b"X-FILLER:" + b"x" * 1000 + b"\r\n"

    async def _slow(self) -> AsyncIterator[bytes]:
        yield b"BEGIN:VCALENDAR\r\n"
        await asyncio.sleep(30)
        yield b"END:VCALENDAR\r\n"

    async def redirect(self, request: Request) -> Response:
        hops, name = request.path_params["hops"], request.path_params["name"]
        target = f"/feeds/{name}" if hops == 1 else f"/redirect/{hops - 1}/{name}"
        return Response(status_code=302, headers={"Location": target})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/feeds/{name}", self.feed),
                Route("/redirect/{hops:int}/{name}", self.redirect),
            ]
        )

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def elsewhere() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    async with serving(server.app()) as base:
        server.base = base
        yield server


@pytest.fixture
def allow_local_feeds(app: Starlette) -> Iterator[None]:
    """The local feed server is on loopback: allowed here, as ROOST_CALENDAR_IMPORT_ALLOW_PRIVATE
    allows it."""
    feeds = app.state.services.calendar_feeds
    app.state.services = replace(
        app.state.services, calendar_feeds=FeedFetcher(allow_private=True, timeout_seconds=2)
    )
    yield
    app.state.services = replace(app.state.services, calendar_feeds=feeds)


async def run_worker(app: Starlette) -> None:
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()


async def add(client: httpx.AsyncClient, place: Place, url: str, name: str = "Elsewhere") -> dict:
    body = await gql(
        client, ADD, {"id": place.listing_id, "url": url, "name": name}, headers=place.as_host
    )
    assert "errors" not in body, body
    return body["data"]["addCalendarImport"]


async def found_by_search(client: httpx.AsyncClient, stay: dict[str, str]) -> list[str]:
    body = await gql(client, SEARCH, {"filter": stay})
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["searchListings"]["edges"]]


async def imports(client: httpx.AsyncClient, place: Place) -> tuple[list[dict], set[date]]:
    """The listing's imports, and the nights of its calendar that cannot be booked."""
    body = await gql(client, IMPORTS, {"id": place.listing_id}, headers=place.as_host)
    assert "errors" not in body, body
    listing = body["data"]["listing"]
    closed = {date.fromisoformat(n["date"]) for n in listing["calendar"] if not n["available"]}
    return listing["calendarImports"], closed


@pytest.mark.usefixtures("allow_local_feeds")
async def test_an_imported_feed_closes_its_nights_and_follows_its_edits(
    app: Starlette,
    client: httpx.AsyncClient,
    clock: FakeClock,
    elsewhere: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    place = await a_place(client)
    stay = {"checkIn": day(4), "checkOut": day(5)}
    assert place.listing_id in await found_by_search(client, stay)  # and cached
    elsewhere.feeds["a"] = ics(all_day(3, 6), all_day(10, 11))
    added = await add(client, place, elsewhere.url("/feeds/a"))
    assert added["lastSuccessAt"] is None and added["nights"] == 0

    await run_worker(app)  # the fetch the add asked for

    assert place.listing_id not in await found_by_search(client, stay)
    [status], closed = await imports(client, place)
    assert closed == offsets((3, 6), (10, 11))
    assert status["nights"] == 4 and status["lastError"] is None
    assert "GET <a calendar feed>" in caplog.text  # the fetch is logged, its URL is not
    assert "/feeds/a" not in caplog.text
    assert status["lastSuccessAt"] is not None and status["conflicts"] == []
    refused = await book(client, place, 4, 5)
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"

    elsewhere.feeds["a"] = ics(all_day(4, 8))  # moved and one event removed
    await run_worker(app)
    assert (await imports(client, place))[1] == offsets((3, 6), (10, 11))  # not due yet
    clock.advance(minutes=31)
    await run_worker(app)

    [status], closed = await imports(client, place)
    assert closed == offsets((4, 8)) and status["nights"] == 4
    await booked(client, place, 10, 11)  # open again, bookable


@pytest.mark.usefixtures("allow_local_feeds")
async def test_host_blocks_and_imports_keep_to_their_own_nights(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    await block(client, place, 5, 6)
    elsewhere.feeds["a"] = ics(all_day(3, 8))
    elsewhere.feeds["b"] = ics(all_day(7, 9))
    await add(client, place, elsewhere.url("/feeds/a"), "A")
    await add(client, place, elsewhere.url("/feeds/b"), "B")
    await run_worker(app)
    assert (await imports(client, place))[1] == offsets((3, 9))

    # The host opens what they closed; a feed still shows it, so it stays closed.
    body = await gql(
        client, UNBLOCK, {"id": place.listing_id, "f": day(3), "t": day(9)}, headers=place.as_host
    )
    assert "errors" not in body, body
    assert (await imports(client, place))[1] == offsets((3, 9))

    # A frees its nights: the host's and B's stay closed.
    await block(client, place, 4, 5)
    elsewhere.feeds["a"] = ics()
    clock.advance(minutes=31)
    await run_worker(app)
    assert (await imports(client, place))[1] == offsets((4, 5), (7, 9))

    [_, b], _ = await imports(client, place)
    assert (await gql(client, REMOVE, {"id": b["id"]}, headers=place.as_host))["data"] == {
        "removeCalendarImport": True
    }
    listed, closed = await imports(client, place)
    assert closed == offsets((4, 5)) and [i["name"] for i in listed] == ["A"]


@pytest.mark.usefixtures("allow_local_feeds")
async def test_a_feed_over_a_roost_booking_is_a_conflict_and_the_booking_stands(
    app: Starlette, client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 5, 7)
    elsewhere.feeds["a"] = ics(all_day(3, 6))
    await add(client, place, elsewhere.url("/feeds/a"))

    await run_worker(app)
    await run_worker(app)  # the notification's event

    [status], closed = await imports(client, place)
    assert status["conflicts"] == [{"from": day(5), "to": day(6)}]
    assert status["nights"] == 2 and closed == offsets((3, 7))
    assert (await read(client, booking["id"], place.as_guest) or {})["status"] == booking["status"]
    notices = await gql(client, NOTIFICATIONS, headers=place.as_host)
    [conflict] = [
        n["node"]
        for n in notices["data"]["notifications"]["edges"]
        if n["node"]["kind"] == "CALENDAR_CONFLICT"
    ]
    assert "Elsewhere" in conflict["title"] and "1 night" in conflict["body"]


@pytest.mark.usefixtures("allow_local_feeds")
async def test_importing_roosts_own_feed_closes_exactly_the_same_nights(
    app: Starlette, client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    source = await a_place(client)
    await block(client, source, 2, 4)
    await block(client, source, 9, 10)
    await booked(client, source, 5, 8)
    elsewhere.feeds["roost"] = (await client.get(await export_path(client, source))).content
    other = await a_place(client)

    await add(client, other, elsewhere.url("/feeds/roost"))
    await run_worker(app)

    assert (await imports(client, other))[1] == (await imports(client, source))[1]
    assert (await imports(client, other))[1] == offsets((2, 4), (5, 8), (9, 10))


@pytest.mark.usefixtures("allow_local_feeds")
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("huge", "larger than 1024 KiB"),
        ("slow", "within 2 seconds"),
        ("gone", "HTTP 404"),
        ("loop", "more than 3 times"),
    ],
)
async def test_a_feed_that_cannot_be_read_changes_nothing(
    app: Starlette,
    client: httpx.AsyncClient,
    clock: FakeClock,
    elsewhere: FeedServer,
    mode: str,
    error: str,
) -> None:
    place = await a_place(client)
    elsewhere.feeds["a"] = ics(all_day(2, 4))
    await add(client, place, elsewhere.url("/feeds/a"))
    await run_worker(app)
    [before], _ = await imports(client, place)
    elsewhere.modes["a"] = mode
    clock.advance(minutes=31)

    await run_worker(app)

    [status], closed = await imports(client, place)
    assert error in status["lastError"], status["lastError"]
    assert status["lastSuccessAt"] == before["lastSuccessAt"]
    assert status["lastFetchedAt"] != before["lastFetchedAt"]
    assert closed == offsets((2, 4)) and status["nights"] == 2


@pytest.mark.usefixtures("allow_local_feeds")
async def test_redirects_are_followed_three_times_and_bad_calendars_are_recorded(
    app: Starlette, client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    elsewhere.feeds["a"] = ics(all_day(2, 4))
    elsewhere.feeds["junk"] = b"<html>not a calendar</html>"
    await add(client, place, elsewhere.url("/redirect/3/a"), "Redirected")
    await add(client, place, elsewhere.url("/feeds/junk"), "Junk")

    await run_worker(app)

    [redirected, junk], closed = await imports(client, place)
    assert redirected["lastError"] is None and closed == offsets((2, 4))
    assert junk["lastError"] == "The feed is not an iCalendar file."


async def test_private_addresses_are_refused(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    for url in (
        "http://127.0.0.1:8000/feed.ics",
        "http://localhost/feed.ics",
        "http://10.0.0.8/feed.ics",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/feed.ics",
        "http://[::ffff:192.168.0.1]/feed.ics",
        "https://0.0.0.0/feed.ics",
    ):
        body = await gql(
            client, ADD, {"id": place.listing_id, "url": url, "name": "x"}, headers=place.as_host
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", url
        assert "private or reserved" in body["errors"][0]["extensions"]["fields"]["url"], url
    assert (await imports(client, place))[0] == []


@pytest.mark.usefixtures("allow_local_feeds")
async def test_a_feed_that_turns_private_later_is_not_fetched(
    app: Starlette, client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    elsewhere.feeds["a"] = ics(all_day(2, 4))
    await add(client, place, elsewhere.url("/feeds/a"))
    app.state.services = replace(app.state.services, calendar_feeds=FeedFetcher())

    await run_worker(app)

    [status], closed = await imports(client, place)
    assert "private or reserved" in status["lastError"] and closed == set()


@pytest.mark.usefixtures("allow_local_feeds")
async def test_bad_input_and_the_limit_of_five(
    client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    for url, name, field in (
        ("ftp://example.com/feed.ics", "x", "url"),
        ("file:///etc/passwd", "x", "url"),
        ("https://example.com/" + "x" * 2000, "x", "url"),
        (elsewhere.url("/feeds/a"), "", "name"),
        (elsewhere.url("/feeds/a"), "x" * 101, "name"),
    ):
        body = await gql(
            client, ADD, {"id": place.listing_id, "url": url, "name": name}, headers=place.as_host
        )
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (url, name)
        assert field in body["errors"][0]["extensions"]["fields"], (url, name)
    for number in range(5):
        await add(client, place, elsewhere.url(f"/feeds/{number}"))
    sixth = await gql(
        client,
        ADD,
        {"id": place.listing_id, "url": elsewhere.url("/feeds/6"), "name": "x"},
        headers=place.as_host,
    )
    assert sixth["errors"][0]["extensions"]["fields"] == {
        "listingId": "a listing imports at most 5 calendars"
    }


@pytest.mark.usefixtures("allow_local_feeds")
async def test_only_the_host_and_admins_see_add_or_remove_imports(
    client: httpx.AsyncClient, database: Database, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    added = await add(client, place, elsewhere.url("/feeds/a"))
    stranger = bearer((await register(client, role="HOST"))["accessToken"])
    for headers in (place.as_guest, stranger, None):
        body = await gql(client, IMPORTS, {"id": place.listing_id}, headers=headers)
        assert body["data"]["listing"]["calendarImports"] is None, body
    variables = {"id": place.listing_id, "url": elsewhere.url("/feeds/b"), "name": "x"}
    refused = await gql(client, ADD, variables, headers=stranger)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = await gql(client, REMOVE, {"id": added["id"]}, headers=stranger)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = await gql(client, REMOVE, {"id": "Q2FsZW5kYXJJbXBvcnQ6OTk5OTk="}, headers=stranger)
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    admin = await an_admin(client, database)
    seen = await gql(client, IMPORTS, {"id": place.listing_id}, headers=admin)
    assert [i["id"] for i in seen["data"]["listing"]["calendarImports"]] == [added["id"]]
    removed = await gql(client, REMOVE, {"id": added["id"]}, headers=admin)
    assert removed["data"] == {"removeCalendarImport": True}


@pytest.mark.usefixtures("allow_local_feeds")
async def test_timed_events_durations_and_cancelled_ones(
    app: Starlette, client: httpx.AsyncClient, elsewhere: FeedServer
) -> None:
    place = await a_place(client)  # in Lisbon: UTC in winter
    elsewhere.feeds["a"] = ics(
        "DTSTART:20270120T150000Z|DTEND:20270122T100000Z",  # nights of the 20th and 21st
        f"DTSTART;VALUE=DATE:{TODAY + timedelta(days=13):%Y%m%d}|DURATION:P2D",
        # 22:00 to 09:00 in New York is 03:00 to 14:00 on the 26th in Lisbon: that night.
        "DTSTART;TZID=America/New_York:20270125T220000|DTEND;TZID=America/New_York:20270126T090000",
        f"{all_day(20, 22)}|STATUS:CANCELLED",
        f"{all_day(23, 24)}|TRANSP:TRANSPARENT",
        "DTSTART;VALUE=DATE:20261201|DTEND;VALUE=DATE:20261205",  # past
    )
    await add(client, place, elsewhere.url("/feeds/a"))

    await run_worker(app)

    [status], closed = await imports(client, place)
    assert status["lastError"] is None
    assert closed == offsets((9, 11), (13, 16))


@pytest.mark.usefixtures("allow_local_feeds")
async def test_an_unchanged_feed_is_not_sent_again_and_still_applied(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, elsewhere: FeedServer
) -> None:
    place = await a_place(client)
    elsewhere.feeds["a"] = ics(all_day(3, 6))
    await add(client, place, elsewhere.url("/feeds/a"))
    await run_worker(app)
    [first], _ = await imports(client, place)
    booking = await booked(client, place, 8, 9)  # not in the feed
    clock.advance(days=4)  # the feed's first night is past now

    await run_worker(app)

    [status], closed = await imports(client, place)
    assert elsewhere.answers == [200, 304]
    assert status["lastSuccessAt"] != first["lastSuccessAt"] and status["lastError"] is None
    assert closed >= offsets((4, 6)) and status["nights"] == 2
    assert booking["status"] in ("PENDING", "CONFIRMED")
