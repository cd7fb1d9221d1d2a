"""The admin dashboard in a real headless Chromium (tests/js/admin_dashboard.mjs, through
playwright-core) against Roost under a real uvicorn: an admin signs in through the form, acts on
a listing, and the API sees the change; a form posted without its CSRF token is refused and
changes nothing. Skipped, saying why, only when no Chromium (or node) can be found."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.database import Database
from tests.accounts_helpers import PASSWORD
from tests.booking_helpers import a_place
from tests.dashboard_helpers import an_admin_account, moderation_on
from tests.helpers import gql
from tests.js_helpers import JS, chromium, node_with_modules
from tests.live_helpers import Live, live_roost

SEARCH = "{ searchListings { edges { node { id } } } }"
AUDIT = "{ auditLog(first: 5) { edges { node { action reason subjectId } } } }"


@pytest.fixture(scope="session")
def browser() -> tuple[str, str]:
    """node with playwright-core installed, and the Chromium it drives."""
    return node_with_modules(), chromium()


@pytest.fixture
async def live(database_url: str, database: Database) -> AsyncIterator[Live]:
    async with live_roost(database_url) as started:
        yield started


async def drive(browser: tuple[str, str], tmp_path: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Runs the script with ``plan``; its steps by name."""
    node, chromium_path = browser
    stderr = tmp_path / "browser.stderr"
    with stderr.open("w") as errors:
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS / "admin_dashboard.mjs"),
            json.dumps({"chromium": chromium_path, **plan}),
            cwd=JS,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr.read_text()[-4000:]
    return {step["step"]: step for step in map(json.loads, out.decode().splitlines())}


async def found(client: httpx.AsyncClient) -> list[str]:
    body = await gql(client, SEARCH)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["searchListings"]["edges"]]


async def test_an_admin_signs_in_and_approves_a_waiting_listing_which_search_then_finds(
    browser: tuple[str, str],
    live: Live,
    client: httpx.AsyncClient,
    database: Database,
    tmp_path: Path,
) -> None:
    email, api = await an_admin_account(client, database)
    await moderation_on(client, api)
    waiting = await a_place(client, title="Cabin waiting for review")
    await a_place(client, title="Another cabin, also waiting")
    assert await found(client) == []
    steps = await drive(
        browser,
        tmp_path,
        {
            "base": live.http_url,
            "email": email,
            "password": PASSWORD,
            "scenario": "moderate",
            "listingTitle": "Cabin waiting for review",
        },
    )
    assert steps["redirected"]["url"] == f"{live.http_url}/admin/login"
    assert steps["signed-in"]["heading"] == "Dashboard"
    assert steps["signed-in"]["cookie"] == {
        "httpOnly": True,
        "sameSite": "Strict",
        "path": "/admin",
        "secure": False,
    }
    assert steps["queue"]["found"] == 1
    assert "2 found" in steps["queue"]["text"]
    assert "The listing is approved" in steps["approved"]["message"]
    assert "Cabin waiting for review" not in steps["approved"]["text"]
    assert "1 found" in steps["approved"]["text"]
    assert steps["signed-out"]["url"] == f"{live.http_url}/admin/login"
    assert steps["done"]["violations"] == []

    assert await found(client) == [waiting.listing_id]
    audit = (await gql(client, AUDIT, headers=api))["data"]["auditLog"]["edges"]
    assert audit[0]["node"]["action"] == "listing.approve"
    assert audit[0]["node"]["subjectId"] == waiting.listing_id


async def test_an_admin_signs_in_suspends_and_restores_a_listing_in_chromium(
    browser: tuple[str, str],
    live: Live,
    client: httpx.AsyncClient,
    database: Database,
    tmp_path: Path,
) -> None:
    place = await a_place(client, title="Loft above the tram stop")
    email, api = await an_admin_account(client, database)
    steps = await drive(
        browser,
        tmp_path,
        {
            "base": live.http_url,
            "email": email,
            "password": PASSWORD,
            "scenario": "suspend",
            "listingTitle": "Loft above the tram stop",
        },
    )
    assert steps["redirected"]["url"] == f"{live.http_url}/admin/login"
    assert steps["signed-in"]["heading"] == "Dashboard"
    assert steps["signed-in"]["cookie"] == {
        "httpOnly": True,
        "sameSite": "Strict",
        "path": "/admin",
        "secure": False,
    }
    assert steps["listing"]["status"].strip() == "PUBLISHED"
    assert steps["suspended"]["status"].strip() == "SUSPENDED"
    assert steps["restored"]["status"].strip() == "PUBLISHED"
    assert steps["signed-out"]["url"] == f"{live.http_url}/admin/login"
    assert steps["done"]["violations"] == []

    assert await found(client) == [place.listing_id]
    audit = (await gql(client, AUDIT, headers=api))["data"]["auditLog"]["edges"]
    assert [edge["node"]["action"] for edge in audit] == ["listing.restore", "listing.suspend"]
    assert audit[1]["node"]["reason"] == "Photos of another property."
    assert {edge["node"]["subjectId"] for edge in audit} == {place.listing_id}


async def test_a_form_posted_without_its_csrf_token_is_refused_in_chromium(
    browser: tuple[str, str],
    live: Live,
    client: httpx.AsyncClient,
    database: Database,
    tmp_path: Path,
) -> None:
    place = await a_place(client, title="Quiet room by the river")
    email, api = await an_admin_account(client, database)
    steps = await drive(
        browser,
        tmp_path,
        {
            "base": live.http_url,
            "email": email,
            "password": PASSWORD,
            "scenario": "no-csrf",
            "listingTitle": "Quiet room by the river",
        },
    )
    assert steps["refused"]["status"] == 403
    assert "nothing was changed" in steps["refused"]["text"]
    assert await found(client) == [place.listing_id]
    assert (await gql(client, AUDIT, headers=api))["data"]["auditLog"]["edges"] == []
