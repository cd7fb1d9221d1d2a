"""Calendar sync (iCalendar, RFC 5545): each listing's secret feed of its taken nights."""

from datetime import date, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

import httpx
import icalendar
import pytest

from tests.accounts_helpers import bearer, register
from tests.booking_helpers import TODAY, Place, a_place, booked, day
from tests.helpers import FakeClock, gql
from tests.listing_helpers import BLOCK

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


async def test_the_feed_is_rate_limited_per_listing(client: httpx.AsyncClient) -> None:
    place = await a_place(client)
    path = await export_path(client, place)
    statuses = [(await client.get(path)).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30
    limited = await client.get(path)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
