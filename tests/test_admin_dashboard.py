"""The admin dashboard at /admin: sign-in for admins only with a session cookie (HttpOnly,
SameSite=Strict, Path=/admin, Secure in production) backed by a server-side session that a
sign-out, a suspension or a lost ADMIN role ends at once; CSRF tokens on every form; every
page sends anyone else to sign in; and each action writes the audit entry its GraphQL twin
writes."""

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route

from app import admin as dashboard
from app.admin.session import SESSION_COOKIE, csrf_token
from app.http import create_app
from app.settings import Settings
from db.database import Database
from db.models import AuditEntry, Listing, User
from services.accounts import WRONG_CREDENTIALS
from tests.accounts_helpers import LOGIN, PASSWORD, error_code, register
from tests.booking_helpers import a_place, booked
from tests.dashboard_helpers import (
    an_admin_account,
    browser,
    csrf_in,
    moderation_on,
    sign_in,
    signed_in,
)
from tests.helpers import committed, gql, http_client, running

SUSPEND_USER = "mutation($id: ID!) { suspendUser(userId: $id) { id status } }"
REINSTATE_USER = "mutation($id: ID!) { reinstateUser(userId: $id) { id status } }"
GRANT = "mutation($id: ID!, $role: Role!) { grantRole(userId: $id, role: $role) { id } }"
REMOVE = "mutation($id: ID!, $role: Role!) { removeRole(userId: $id, role: $role) { id } }"
RESET = "mutation($id: ID!) { forcePasswordReset(userId: $id) { id } }"
SUSPEND_LISTING = """
mutation($id: ID!, $reason: String!) { suspendListing(id: $id, reason: $reason) { id } }
"""
RESTORE_LISTING = "mutation($id: ID!) { restoreListing(id: $id) { id } }"


def number(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":")[1])


@pytest.fixture
async def admin_client(
    app: Starlette, database: Database, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    email, _ = await an_admin_account(client, database)
    async with signed_in(app, email) as admin:
        yield admin


async def status_of(database: Database, user_id: int) -> str:
    async with committed(database) as session:
        return str(await session.scalar(select(User.status).where(User.id == user_id)))


def example_path(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", "1", route.path)


PROTECTED = [
    (method, route)
    for route in dashboard.routes
    if isinstance(route, Route) and route.path not in dashboard.PUBLIC_PATHS
    for method in sorted((route.methods or set()) - {"HEAD"})
]


async def test_every_page_sends_strangers_guests_and_hosts_to_sign_in(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    guest = (await register(client))["refreshToken"]
    host = (await register(client, role="HOST"))["refreshToken"]
    assert len(PROTECTED) >= 14
    for credential in (None, guest, host, "not-a-session"):
        cookies = {SESSION_COOKIE: credential} if credential else {}
        async with browser(app, cookies) as visitor:
            for method, route in PROTECTED:
                # With the CSRF token the session would have: the session is what fails.
                data = {"csrf": csrf_token(credential or ""), "status": "SUSPENDED"}
                response = await visitor.request(
                    method, example_path(route), data=data if method == "POST" else None
                )
                assert response.status_code == 303, (method, route.path, credential)
                assert response.headers["location"] == "/admin/login", route.path
    # Nothing any of them posted changed anything.
    async with committed(database) as session:
        assert await session.scalar(select(AuditEntry.id)) is None
        assert set(await session.scalars(select(User.status))) == {"ACTIVE"}


async def test_an_admin_signs_in_with_a_strict_http_only_cookie_for_admin_only(
    client: httpx.AsyncClient, database: Database
) -> None:
    email, _ = await an_admin_account(client, database)
    response = await sign_in(client, email)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith(SESSION_COOKIE + "=")
    )
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/admin" in flags
    assert "secure" not in flags  # development serves plain HTTP
    assert any(flag.startswith("max-age=") for flag in flags)

    home = await client.get("/admin")
    assert home.status_code == 200
    assert email in home.text
    # A signed-in admin who opens the sign-in page goes to the dashboard.
    assert (await client.get("/admin/login")).headers["location"] == "/admin"


async def test_the_cookie_is_secure_in_production(settings: Settings, database: Database) -> None:
    production = settings.model_copy(update={"env": "production"})
    async with running(create_app(production)) as app, http_client(app) as client:
        email, _ = await an_admin_account(client, database)
        form = await client.get("/admin/login")
        signin_cookie = form.headers["set-cookie"].lower()
        assert "secure" in signin_cookie and "httponly" in signin_cookie
        # A secure cookie travels over HTTPS only: the client sends it back by hand here.
        token = csrf_in(form.text)
        async with browser(app, {"roost_admin_signin": token}) as visitor:
            response = await visitor.post(
                "/admin/login", data={"csrf": token, "email": email, "password": PASSWORD}
            )
        assert response.status_code == 303, response.text
        flags = [p.strip().lower() for p in response.headers["set-cookie"].split(";")]
        assert "secure" in flags and "httponly" in flags and "samesite=strict" in flags


async def test_a_non_admin_hears_what_a_wrong_password_hears(
    client: httpx.AsyncClient, database: Database
) -> None:
    guest = await register(client)
    email, _ = await an_admin_account(client, database)
    for who, password in ((guest["user"]["email"], PASSWORD), (email, "not the password")):
        response = await sign_in(client, who, password)
        assert response.status_code == 401
        assert WRONG_CREDENTIALS in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert (await client.get("/admin")).status_code == 303


async def test_sign_in_spends_the_same_attempts_as_the_graphql_login(
    client: httpx.AsyncClient, database: Database, app: Starlette
) -> None:
    email, _ = await an_admin_account(client, database)
    budget = app.state.services.attempt_limits.per_account
    for _ in range(budget):
        assert (await sign_in(client, email, "wrong password")).status_code == 401
    refused = await sign_in(client, email)  # the right password, too late
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    body = await gql(client, LOGIN, {"email": email, "password": PASSWORD})
    assert error_code(body) == "RATE_LIMITED"


async def test_the_sign_in_form_needs_its_own_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    email, _ = await an_admin_account(client, database)
    await client.get("/admin/login")
    for data in (
        {"email": email, "password": PASSWORD},
        {"email": email, "password": PASSWORD, "csrf": "guessed"},
    ):
        response = await client.post("/admin/login", data=data)
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    database: Database,
    admin_client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    guest = await register(client)
    guest_id = number(guest["user"]["id"])
    page = await admin_client.get(f"/admin/users/{guest_id}")
    assert page.status_code == 200
    token = csrf_in(page.text)
    url = f"/admin/users/{guest_id}/status"
    for data, headers in (
        ({"status": "SUSPENDED"}, {}),
        ({"status": "SUSPENDED", "csrf": ""}, {}),
        ({"status": "SUSPENDED", "csrf": token[:-1] + ("1" if token[-1] == "0" else "0")}, {}),
        ({"status": "SUSPENDED", "csrf": csrf_token(guest["refreshToken"])}, {}),
        # The right token from a page of another site.
        ({"status": "SUSPENDED", "csrf": token}, {"Origin": "https://evil.example"}),
        ({"status": "SUSPENDED", "csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
    ):
        response = await admin_client.post(url, data=data, headers=headers)
        assert response.status_code == 403, data
        assert "nothing was changed" in response.text
        assert await status_of(database, guest_id) == "ACTIVE"
    async with committed(database) as session:
        assert await session.scalar(select(AuditEntry.id)) is None

    done = await admin_client.post(
        url, data={"status": "SUSPENDED", "csrf": token}, headers={"Origin": "http://testserver"}
    )
    public = await admin_client.post(
        url, data={"status": "ACTIVE", "csrf": token}, headers={"Origin": settings.public_url}
    )
    assert public.status_code == 303
    done = await admin_client.post(url, data={"status": "SUSPENDED", "csrf": token})
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/users/{guest_id}?done=suspended"
    assert await status_of(database, guest_id) == "SUSPENDED"
    # The guest's API session ended with the suspension.
    assert error_code(await gql(client, "{ me { id } }", headers=_bearer(guest))) in {
        "UNAUTHENTICATED"
    }


def _bearer(payload: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {payload['accessToken']}"}


async def test_suspension_sign_out_and_a_lost_role_end_the_dashboard_session_at_once(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email, own_api = await an_admin_account(client, database)
    _, other_admin = await an_admin_account(client, database)
    admin_id = number((await gql(client, "{ me { id } }", headers=own_api))["data"]["me"]["id"])
    async with signed_in(app, email) as visitor:
        assert (await visitor.get("/admin/users")).status_code == 200

        # Suspended from the API by another admin: the next page is the sign-in page.
        await gql(client, SUSPEND_USER, {"id": _user_gid(admin_id)}, headers=other_admin)
        assert (await visitor.get("/admin/users")).headers["location"] == "/admin/login"
        # Reinstating does not bring the ended session back.
        await gql(client, REINSTATE_USER, {"id": _user_gid(admin_id)}, headers=other_admin)
        assert (await visitor.get("/admin/users")).headers["location"] == "/admin/login"

    async with signed_in(app, email) as visitor:
        await gql(client, REMOVE, {"id": _user_gid(admin_id), "role": "ADMIN"}, headers=other_admin)
        assert (await visitor.get("/admin")).headers["location"] == "/admin/login"
        await gql(client, GRANT, {"id": _user_gid(admin_id), "role": "ADMIN"}, headers=other_admin)

    async with signed_in(app, email) as visitor:
        credential = visitor.cookies[SESSION_COOKIE]
        home = await visitor.get("/admin")
        out = await visitor.post("/admin/logout", data={"csrf": csrf_in(home.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/admin/login"
        # The cookie is gone from the browser, and the session from the server.
        assert SESSION_COOKIE not in visitor.cookies
    async with browser(app, {SESSION_COOKIE: credential}) as copy:
        assert (await copy.get("/admin")).headers["location"] == "/admin/login"


def _user_gid(user_id: int) -> str:
    return base64.b64encode(f"User:{user_id}".encode()).decode()


def _listing_gid(listing_id: int) -> str:
    return base64.b64encode(f"Listing:{listing_id}".encode()).decode()


async def _entries(database: Database) -> list[AuditEntry]:
    async with committed(database) as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _shape(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.actor_id,
        entry.action,
        entry.subject_type,
        entry.before,
        entry.after,
        entry.reason,
    )


async def test_each_action_writes_the_audit_entry_its_graphql_twin_writes(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email, api = await an_admin_account(client, database)
    by_api = number((await register(client))["user"]["id"])
    by_page = number((await register(client))["user"]["id"])
    first, second = await a_place(client), await a_place(client, title="Second loft")
    listing_by_api, listing_by_page = number(first.listing_id), number(second.listing_id)

    async with signed_in(app, email) as browser:
        token = csrf_in((await browser.get("/admin")).text)

        async def post(url: str, **data: str) -> None:
            response = await browser.post(url, data={"csrf": token, **data})
            assert response.status_code == 303, response.text

        steps = [
            (SUSPEND_USER, {}, "/admin/users/{}/status", {"status": "SUSPENDED"}),
            (REINSTATE_USER, {}, "/admin/users/{}/status", {"status": "ACTIVE"}),
            (GRANT, {"role": "HOST"}, "/admin/users/{}/roles", {"role": "HOST", "held": "true"}),
            (GRANT, {"role": "ADMIN"}, "/admin/users/{}/roles", {"role": "ADMIN", "held": "true"}),
            (REMOVE, {"role": "HOST"}, "/admin/users/{}/roles", {"role": "HOST", "held": "false"}),
            (RESET, {}, "/admin/users/{}/password-reset", {}),
        ]
        for mutation, arguments, url, form in steps:
            body = await gql(client, mutation, {"id": _user_gid(by_api), **arguments}, headers=api)
            assert "errors" not in body, body
            await post(url.format(by_page), **form)
        reason = {"reason": "Photos of another property."}
        body = await gql(
            client, SUSPEND_LISTING, {"id": _listing_gid(listing_by_api), **reason}, headers=api
        )
        assert "errors" not in body, body
        await post(f"/admin/listings/{listing_by_page}/suspend", **reason)
        body = await gql(client, RESTORE_LISTING, {"id": _listing_gid(listing_by_api)}, headers=api)
        assert "errors" not in body, body
        await post(f"/admin/listings/{listing_by_page}/restore")

    entries = await _entries(database)
    assert len(entries) == 2 * (len(steps) + 2)
    for api_entry, page_entry in zip(entries[::2], entries[1::2], strict=True):
        assert _shape(api_entry) == _shape(page_entry)
        assert (api_entry.subject_id, page_entry.subject_id) in {
            (by_api, by_page),
            (listing_by_api, listing_by_page),
        }
    async with committed(database) as session:
        statuses = dict((await session.execute(select(Listing.id, Listing.status))).all())
    assert statuses[listing_by_api] == statuses[listing_by_page] == "PUBLISHED"


async def test_a_refused_action_shows_the_rule_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, admin_client: httpx.AsyncClient
) -> None:
    place = await a_place(client)
    listing_id = number(place.listing_id)
    page = await admin_client.get(f"/admin/listings/{listing_id}")
    token = csrf_in(page.text)
    blank = await admin_client.post(
        f"/admin/listings/{listing_id}/suspend", data={"csrf": token, "reason": "   "}
    )
    assert blank.status_code == 400
    assert "reason" in blank.text
    not_suspended = await admin_client.post(
        f"/admin/listings/{listing_id}/restore", data={"csrf": token}
    )
    assert not_suspended.status_code == 409
    assert "not suspended" in not_suspended.text
    missing = await admin_client.get("/admin/users/999999")
    assert missing.status_code == 404
    assert await _entries(database) == []


async def test_pages_search_filter_and_page_through_with_everything_escaped(
    client: httpx.AsyncClient, database: Database, admin_client: httpx.AsyncClient
) -> None:
    for n in range(26):
        await register(client, first_name=f"Bulk{n}")
    await register(client, first_name="<script>alert(1)</script>")
    first_page = await admin_client.get("/admin/users")
    assert first_page.status_code == 200
    assert "28 found" in first_page.text  # 27 and the admin
    assert "<script>alert" not in first_page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first_page.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first_page.text)
    assert next_url
    second_page = await admin_client.get(next_url.group(1).replace("&amp;", "&"))
    assert second_page.status_code == 200
    rows = re.findall(r'<td><a href="/admin/users/(\d+)">\d+</a></td>', second_page.text)
    assert len(rows) == 3

    found = await admin_client.get("/admin/users", params={"search": "bulk1", "role": "GUEST"})
    assert found.text.count("Bulk1") == 11  # Bulk1 and Bulk10 to Bulk19

    place = await a_place(client)
    booking = await booked(client, place, 5, 7)
    listings = await admin_client.get("/admin/listings", params={"search": "alfama"})
    assert "Alfama loft" in listings.text
    assert "1 found" in listings.text
    bookings = await admin_client.get(
        "/admin/bookings", params={"status": booking["status"], "listing": number(place.listing_id)}
    )
    booking_id = number(booking["id"])
    assert f'<a href="/admin/bookings/{booking_id}">{booking_id}</a>' in bookings.text
    detail = await admin_client.get(f"/admin/bookings/{booking_id}")
    assert detail.status_code == 200
    assert booking["status"] in detail.text and "Alfama loft" in detail.text
    assert (await admin_client.get("/admin/bookings/999999")).status_code == 404
    assert "1 found" in bookings.text
    assert (
        await admin_client.get("/admin/payments", params={"status": "FAILED"})
    ).status_code == 200
    assert (
        await admin_client.get("/admin/audit", params={"action": "user.suspend"})
    ).status_code == 200

    for url, params in (
        ("/admin/users", {"role": "OWNER"}),
        ("/admin/users", {"after": "not-a-cursor"}),
        ("/admin/bookings", {"from": "yesterday"}),
        ("/admin/bookings", {"guest": "-1"}),
        ("/admin/listings", {"search": "x" * 201}),
        ("/admin/audit", {"subject_type": "User"}),
    ):
        refused = await admin_client.get(url, params=params)
        assert refused.status_code == 400, (url, params)


async def test_pages_load_their_own_stylesheet_and_nothing_else(
    admin_client: httpx.AsyncClient,
) -> None:
    for url in ("/admin", "/admin/login", "/admin/users"):
        response = await admin_client.get(url, follow_redirects=True)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "style-src 'self'" in policy
        assert "script-src" not in policy and "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script" not in response.text
    css = await admin_client.get("/admin/static/admin.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


APPROVE = "mutation($id: ID!) { approveListing(id: $id) { id } }"
FLAG = "mutation($id: ID!, $reason: String!) { flagListing(id: $id, reason: $reason) { id } }"
SETTINGS = """
{ platformSettings { guestServiceFeePercent payoutDelayHours moderationEnabled
  taxPercentByCountry { country percent } } }
"""
PAYOUT_DELAY = """
mutation($hours: Int) { updatePlatformSettings(input: { payoutDelayHours: $hours }) {
  payoutDelayHours } }
"""


async def test_moderation_and_settings_write_the_audit_entries_of_their_graphql_twins(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    email, api = await an_admin_account(client, database)
    await moderation_on(client, api)
    by_api = number((await a_place(client)).listing_id)
    by_page = number((await a_place(client, title="Second loft")).listing_id)
    async with signed_in(app, email) as visitor:
        queue = await visitor.get("/admin/moderation")
        assert queue.status_code == 200
        assert "2 found" in queue.text and "Second loft" in queue.text
        token = csrf_in(queue.text)

        assert "errors" not in await gql(client, APPROVE, {"id": _listing_gid(by_api)}, headers=api)
        approved = await visitor.post(
            f"/admin/listings/{by_page}/approve", data={"csrf": token, "back": "queue"}
        )
        assert approved.headers["location"] == "/admin/moderation?done=listing-approved"
        reason = "Photos of another property."
        flag = {"id": _listing_gid(by_api), "reason": reason}
        assert "errors" not in await gql(client, FLAG, flag, headers=api)
        flagged = await visitor.post(
            f"/admin/listings/{by_page}/flag",
            data={"csrf": token, "reason": reason, "back": "https://evil.example"},
        )
        # Back to the listing: the form names no place to go but the queue.
        assert flagged.headers["location"] == f"/admin/listings/{by_page}?done=listing-flagged"
        assert "FLAGGED" in (await visitor.get("/admin/moderation?state=FLAGGED")).text

        body = await gql(client, PAYOUT_DELAY, {"hours": 48}, headers=api)
        assert "errors" not in body, body
        saved = await visitor.post(
            "/admin/settings", data={"csrf": token, "payout_delay_hours": "72"}
        )
        assert saved.headers["location"] == "/admin/settings?done=settings-saved"

    entries = (await _entries(database))[1:]  # after the switch that turned moderation on
    assert [entry.action for entry in entries] == [
        "listing.approve",
        "listing.approve",
        "listing.flag",
        "listing.flag",
        "settings.update",
        "settings.update",
    ]
    for api_entry, page_entry in zip(entries[:4:2], entries[1:4:2], strict=True):
        assert _shape(api_entry) == _shape(page_entry)
        assert (api_entry.subject_id, page_entry.subject_id) == (by_api, by_page)
    api_entry, page_entry = entries[4:]
    assert api_entry.after == {"payout_delay_hours": 48}
    assert page_entry.before == {"payout_delay_hours": 48}
    assert page_entry.after == {"payout_delay_hours": 72}
    assert page_entry.actor_id == api_entry.actor_id
    assert (page_entry.subject_type, page_entry.subject_id) == ("PlatformSettings", 1)


async def test_the_settings_page_saves_only_what_changed_and_refuses_what_is_out_of_bounds(
    client: httpx.AsyncClient, database: Database, admin_client: httpx.AsyncClient
) -> None:
    page = await admin_client.get("/admin/settings")
    assert page.status_code == 200
    token = csrf_in(page.text)
    shown = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
    assert "csrf" in shown and "guest_service_fee_percent" in shown
    unchanged = {**shown, "moderation_enabled": "off", "tax_percent_by_country": ""}
    kept = await admin_client.post("/admin/settings", data=unchanged)
    assert kept.headers["location"] == "/admin/settings?done=settings-unchanged"
    assert await _entries(database) == []

    for wrong, field_name in (
        ({"guest_service_fee_percent": "150"}, "guestServiceFeePercent"),
        ({"payout_delay_hours": "soon"}, "payoutDelayHours"),
        ({"payment_window_minutes": "0"}, "paymentWindowMinutes"),
        ({"tax_percent_by_country": "XX 5"}, "taxPercentByCountry"),
        ({"tax_percent_by_country": "PT"}, "taxPercentByCountry"),
        ({"moderation_enabled": "maybe"}, "moderationEnabled"),
    ):
        refused = await admin_client.post("/admin/settings", data={"csrf": token, **wrong})
        assert refused.status_code == 400, wrong
        assert field_name in refused.text, wrong
    assert await _entries(database) == []

    changed = await admin_client.post(
        "/admin/settings",
        data={
            "csrf": token,
            "guest_service_fee_percent": "12.5",
            "tax_percent_by_country": "pt 6.5\nES: 10\n",
            "moderation_enabled": "on",
        },
    )
    assert changed.headers["location"] == "/admin/settings?done=settings-saved"
    _, api = await an_admin_account(client, database)
    settings = (await gql(client, SETTINGS, headers=api))["data"]["platformSettings"]
    assert settings["guestServiceFeePercent"] == "12.50"
    assert settings["moderationEnabled"] is True
    assert settings["taxPercentByCountry"] == [
        {"country": "ES", "percent": "10.00"},
        {"country": "PT", "percent": "6.50"},
    ]
    [entry] = await _entries(database)
    assert entry.action == "settings.update"
    assert set(entry.after) == {
        "guest_service_fee_percent",
        "tax_percent_by_country",
        "moderation_enabled",
    }

    page = await admin_client.get("/admin/settings")
    assert "set by an admin" in page.text
    back = await admin_client.post(
        "/admin/settings", data={"csrf": token, "default:guest_service_fee_percent": "on"}
    )
    assert back.headers["location"] == "/admin/settings?done=settings-saved"
    settings = (await gql(client, SETTINGS, headers=api))["data"]["platformSettings"]
    assert settings["guestServiceFeePercent"] == shown["guest_service_fee_percent"]
