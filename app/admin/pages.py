"""The dashboard's pages and actions: another door to the services the GraphQL admin operations
call, with the same arguments, so the rules and the audit entries are the same whichever door
an admin uses."""

from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app.admin import settings_form
from app.admin.rendering import (
    PAGE_HEADERS,
    SIGN_IN,
    STYLESHEET,
    admin_only,
    choice,
    date_field,
    field,
    id_field,
    page_url,
    redirect,
    refused,
    render,
)
from app.admin.session import (
    LOGIN_COOKIE,
    PATH,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Admin,
    forget,
    new_sign_in_token,
    read_form,
    same_origin,
    services,
    set_session_cookie,
    set_sign_in_cookie,
    signed_in_admin,
    tokens_match,
)
from auth import rules
from db.loaders import Loaders
from db.rows import AuditEntryRow
from db.states import (
    BookingStatus,
    ListingModeration,
    ListingStatus,
    PaymentProvider,
    PaymentStatus,
    Role,
    UserStatus,
)
from services import (
    accounts,
    admin_users,
    audit,
    booking_lists,
    listing_lists,
    listings,
    moderation,
    payment_lists,
    platform_settings,
    sessions,
)
from services.errors import InvalidInput, NotFound, RateLimited, Unauthenticated
from services.sessions import Client, SessionPolicy
from services.validation import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH

PAGE_SIZE = 25
DETAIL_ROWS = 10
# What a redirect after an action may say: fixed words, never text from the request.
DONE = {
    "suspended": "The account is suspended and signed out everywhere.",
    "reinstated": "The account is active again.",
    "role-granted": "The role is given.",
    "role-removed": "The role is taken away.",
    "password-reset": "The account is signed out, its password voided and a reset link mailed.",
    "listing-suspended": "The listing is suspended: out of search and booking.",
    "listing-restored": "The listing is published again.",
    "listing-approved": "The listing is approved: once published, it is in search and bookable.",
    "listing-flagged": "The listing is flagged: out of search and booking; its host is told why.",
    "settings-saved": "The settings are saved: every server applies them from the next request.",
    "settings-unchanged": "Nothing was different: nothing was saved.",
    "booking-canceled": "The booking is canceled; the refund is on its way to the guest.",
    "payment-refunded": "The refund is made.",
    "payout-retried": "The payout is due again: the next worker pass sends it.",
    "note-added": "The note is added.",
    "dispute-resolved": "The dispute is resolved; both sides are told.",
}


def done_message(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def _client(request: Request) -> Client:
    return Client(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


class Page(Protocol):
    """What every service's page of results has, whatever it lists."""

    @property
    def cursors(self) -> list[str]: ...
    @property
    def has_next_page(self) -> bool: ...
    @property
    def count_query(self) -> Any: ...


async def paging(request: Request, page: Page) -> dict[str, Any]:
    """A list page's count and its links: to the next page, and back to the first."""
    async with request.app.state.database.read_session() as session:
        total = int(await session.scalar(page.count_query) or 0)
    return {
        "total": total,
        "next_url": page_url(request, after=page.cursors[-1]) if page.has_next_page else None,
        "first_url": page_url(request, after=None),
    }


async def actors_of(session: AsyncSession, entries: list[AuditEntryRow]) -> dict[int, str]:
    return await admin_users.emails(
        session, [entry.actor_id for entry in entries if entry.actor_id is not None]
    )


async def stylesheet(request: Request) -> Response:
    return FileResponse(
        STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", **PAGE_HEADERS},
    )


# Signing in and out.


def _sign_in_page(
    request: Request, token: str, *, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    response = render(
        request,
        "login.html",
        admin=None,
        status=status,
        sign_in_token=token,
        email=email,
        error=error,
    )
    set_sign_in_cookie(request, response, token)
    return response


async def sign_in_form(request: Request) -> Response:
    if await signed_in_admin(request) is not None:
        return redirect(PATH)
    return _sign_in_page(request, new_sign_in_token())


async def sign_in(request: Request) -> Response:
    """The GraphQL ``login``'s service and attempt limits; only an admin gets a session, and
    anyone else hears what a wrong password hears."""
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE)
    if (
        form is None
        or expected is None
        or not same_origin(request)
        or not tokens_match(form.get("csrf"), expected)
    ):
        return refused(request, None)
    email = form.get("email")
    password = form.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        return _sign_in_page(request, expected, error="Give an email and a password.", status=400)
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return _sign_in_page(
            request, expected, email="", error=accounts.WRONG_CREDENTIALS, status=401
        )
    state = services(request)
    database = request.app.state.database
    try:
        await state.attempt_limits.count("login", ip=_client(request).ip_address, email=email)
        authenticated = await accounts.authenticate(
            database, email=email, password=password, passwords=state.passwords
        )
        if not rules.is_admin(authenticated.user):
            raise Unauthenticated(accounts.WRONG_CREDENTIALS)
    except (Unauthenticated, RateLimited) as error:
        page = _sign_in_page(
            request, expected, email=email, error=error.message, status=error.http_status
        )
        if isinstance(error, RateLimited) and error.retry_after_seconds is not None:
            page.headers["Retry-After"] = str(error.retry_after_seconds)
        return page
    policy = SessionPolicy(
        access_tokens=state.session_policy.access_tokens, refresh_lifetime=SESSION_LIFETIME
    )

    async def work(session: AsyncSession) -> sessions.IssuedTokens:
        await accounts.store_rehash(session, authenticated)
        return await sessions.start(
            session, user=authenticated.user, policy=policy, client=_client(request)
        )

    issued = await database.transaction(work)
    response = redirect(PATH)
    set_session_cookie(request, response, issued.refresh_token)
    forget(request, response, LOGIN_COOKIE)
    return response


@admin_only
async def sign_out(request: Request, admin: Admin) -> Response:
    ended = await request.app.state.database.transaction(
        partial(sessions.end, refresh_token=admin.credential)
    )
    if ended:
        await services(request).revoked_sessions.settle()
    response = redirect(SIGN_IN)
    forget(request, response, SESSION_COOKIE)
    return response


@admin_only
async def home(request: Request, admin: Admin) -> Response:
    return render(request, "home.html", admin=admin, done=done_message(request))


# Users.


@admin_only
async def users(request: Request, admin: Admin) -> Response:
    query = request.query_params
    async with request.app.state.database.read_session() as session:
        page = await admin_users.search(
            session,
            text=field(query, "search"),
            role=choice(query, "role", Role),
            status=choice(query, "status", UserStatus),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
        found = [
            {
                "id": user.id,
                "email": user.email,
                "name": f"{user.first_name} {user.last_name}",
                "roles": list(user.roles),
                "status": user.status,
                "created_at": user.created_at,
            }
            for user in page.users
        ]
    return render(
        request,
        "users.html",
        admin=admin,
        users=found,
        **await paging(request, page),
        query=query,
        roles=list(Role),
        statuses=list(UserStatus),
    )


@admin_only
async def user(request: Request, admin: Admin) -> Response:
    user_id: int = request.path_params["user_id"]
    async with request.app.state.database.read_session() as session:
        account = await admin_users.account(session, user_id)
        shown = {
            "id": account.id,
            "email": account.email,
            "name": f"{account.first_name} {account.last_name}",
            "roles": list(account.roles),
            "status": account.status,
            "created_at": account.created_at,
            "email_verified_at": account.email_verified_at,
            "has_password": account.password_hash is not None,
        }
        trips = await booking_lists.list_bookings(
            session, guest_id=user_id, first=DETAIL_ROWS, newest_first=True
        )
        payments = await payment_lists.list_payments(session, guest_id=user_id, first=DETAIL_ROWS)
        hosted = await listing_lists.search(session, host_id=user_id, first=DETAIL_ROWS)
        changes = await audit.list_entries(session, first=DETAIL_ROWS, subject=("User", user_id))
        actors = await actors_of(session, changes.entries)
    return render(
        request,
        "user.html",
        admin=admin,
        user=shown,
        trips=trips.bookings,
        payments=payments.payments,
        listings=hosted.listings,
        changes=changes.entries,
        actors=actors,
        done=done_message(request),
    )


async def posted_form(request: Request) -> Any:
    return await request.form()  # parsed and checked already by admin_only


def posted_text(form: Any, name: str) -> str:
    """A text field of a posted form; empty when it is missing (the service says what it needs)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


@admin_only
async def set_user_status(request: Request, admin: Admin) -> Response:
    user_id: int = request.path_params["user_id"]
    status = choice(await posted_form(request), "status", UserStatus)
    if status is None:
        raise InvalidInput.field("status", "choose ACTIVE or SUSPENDED")
    await request.app.state.database.transaction(
        partial(
            accounts.set_status,
            actor_id=admin.user.id,
            user_id=user_id,
            status=status,
            now=services(request).clock(),
        )
    )
    if status == UserStatus.SUSPENDED:
        await services(request).revoked_sessions.settle()
    done = "suspended" if status == UserStatus.SUSPENDED else "reinstated"
    return redirect(f"{PATH}/users/{user_id}?done={done}")


@admin_only
async def set_user_role(request: Request, admin: Admin) -> Response:
    user_id: int = request.path_params["user_id"]
    form = await posted_form(request)
    role = choice(form, "role", Role)
    held = field(form, "held", limit=5)
    if role is None or held not in ("true", "false"):
        raise InvalidInput.field("role", "choose a role to give or take")
    await request.app.state.database.transaction(
        partial(
            admin_users.set_role,
            actor_id=admin.user.id,
            user_id=user_id,
            role=role,
            held=held == "true",
            now=services(request).clock(),
        )
    )
    done = "role-granted" if held == "true" else "role-removed"
    return redirect(f"{PATH}/users/{user_id}?done={done}")


@admin_only
async def force_password_reset(request: Request, admin: Admin) -> Response:
    user_id: int = request.path_params["user_id"]
    await request.app.state.database.transaction(
        partial(
            admin_users.force_password_reset,
            actor_id=admin.user.id,
            user_id=user_id,
            now=services(request).clock(),
        )
    )
    await services(request).revoked_sessions.settle()
    return redirect(f"{PATH}/users/{user_id}?done=password-reset")


# Listings.


@admin_only
async def listings_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    async with request.app.state.database.read_session() as session:
        page = await listing_lists.search(
            session,
            text=field(query, "search"),
            status=choice(query, "status", ListingStatus),
            moderation=choice(query, "moderation", ListingModeration),
            host_id=id_field(query, "host"),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
    return render(
        request,
        "listings.html",
        admin=admin,
        listings=page.listings,
        **await paging(request, page),
        query=query,
        statuses=list(ListingStatus),
        moderation_states=list(ListingModeration),
    )


@admin_only
async def listing(request: Request, admin: Admin) -> Response:
    listing_id: int = request.path_params["listing_id"]
    async with request.app.state.database.read_session() as session:
        summary = await listing_lists.summary(session, listing_id)
        bookings = await booking_lists.list_bookings(
            session,
            where=booking_lists.BookingFilter(listing_id=listing_id),
            first=DETAIL_ROWS,
            newest_first=True,
        )
        changes = await audit.list_entries(
            session, first=DETAIL_ROWS, subject=("Listing", listing_id)
        )
        actors = await actors_of(session, changes.entries)
    return render(
        request,
        "listing.html",
        admin=admin,
        listing=summary,
        bookings=bookings.bookings,
        changes=changes.entries,
        actors=actors,
        done=done_message(request),
    )


@admin_only
async def suspend_listing(request: Request, admin: Admin) -> Response:
    listing_id: int = request.path_params["listing_id"]
    form = await posted_form(request)
    await request.app.state.database.transaction(
        partial(
            listings.suspend,
            admin=admin.user,
            listing_id=listing_id,
            reason=posted_text(form, "reason"),
            now=services(request).clock(),
        )
    )
    return redirect(f"{PATH}/listings/{listing_id}?done=listing-suspended")


@admin_only
async def restore_listing(request: Request, admin: Admin) -> Response:
    listing_id: int = request.path_params["listing_id"]
    await request.app.state.database.transaction(
        partial(
            listings.restore,
            admin=admin.user,
            listing_id=listing_id,
            now=services(request).clock(),
        )
    )
    return redirect(f"{PATH}/listings/{listing_id}?done=listing-restored")


def _back_to(form: Any, listing_id: int, done: str) -> str:
    # Where an action was taken from: the queue, or the listing (never a URL from the form).
    if form.get("back") == "queue":
        return f"{PATH}/moderation?done={done}"
    return f"{PATH}/listings/{listing_id}?done={done}"


@admin_only
async def moderation_queue(request: Request, admin: Admin) -> Response:
    query = request.query_params
    state = choice(query, "state", ListingModeration) or ListingModeration.PENDING_REVIEW
    async with request.app.state.database.read_session() as session:
        page = await moderation.moderation_queue(
            session,
            admin=admin.user,
            state=state,
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
        waiting = [
            {
                "id": listing.id,
                "title": listing.title,
                "city": listing.city,
                "country": listing.country,
                "host_id": listing.host_id,
                "status": listing.status,
                "since": listing.moderation_since,
                "reason": listing.moderation_reason,
            }
            for listing in page.listings
        ]
        hosts = await admin_users.emails(session, [listing.host_id for listing in page.listings])
    return render(
        request,
        "moderation.html",
        admin=admin,
        listings=waiting,
        hosts=hosts,
        state=state,
        states=list(ListingModeration),
        **await paging(request, page),
        query=query,
        done=done_message(request),
    )


@admin_only
async def approve_listing(request: Request, admin: Admin) -> Response:
    listing_id: int = request.path_params["listing_id"]
    await request.app.state.database.transaction(
        partial(
            moderation.approve,
            admin=admin.user,
            listing_id=listing_id,
            now=services(request).clock(),
        )
    )
    return redirect(_back_to(await posted_form(request), listing_id, "listing-approved"))


@admin_only
async def flag_listing(request: Request, admin: Admin) -> Response:
    listing_id: int = request.path_params["listing_id"]
    form = await posted_form(request)
    await request.app.state.database.transaction(
        partial(
            moderation.flag,
            admin=admin.user,
            listing_id=listing_id,
            reason=posted_text(form, "reason"),
            now=services(request).clock(),
        )
    )
    return redirect(_back_to(form, listing_id, "listing-flagged"))


# Platform settings.


@admin_only
async def settings_page(request: Request, admin: Admin) -> Response:
    async with request.app.state.database.read_session() as session:
        # Read afresh, not from the cache: the admin sees what is stored this moment.
        current = await platform_settings.current(
            session, defaults=services(request).default_settings
        )
        editor = await admin_users.emails(
            session, [current.updated_by_id] if current.updated_by_id else []
        )
    return render(
        request,
        "settings.html",
        admin=admin,
        settings=settings_form.shown(current),
        changed=current.changed,
        updated_at=current.updated_at,
        updated_by=editor.get(current.updated_by_id or 0),
        updated_by_id=current.updated_by_id,
        done=done_message(request),
    )


@admin_only
async def save_settings(request: Request, admin: Admin) -> Response:
    state = services(request)
    async with request.app.state.database.read_session() as session:
        current = await platform_settings.current(session, defaults=state.default_settings)
    changes = settings_form.changes(await posted_form(request), current)
    if not changes:
        return redirect(f"{PATH}/settings?done=settings-unchanged")
    await request.app.state.database.transaction(
        partial(
            platform_settings.update,
            admin=admin.user,
            changes=changes,
            now=state.clock(),
            defaults=state.default_settings,
        )
    )
    await state.platform_settings.changed()
    return redirect(f"{PATH}/settings?done=settings-saved")


# Bookings and payments.


@admin_only
async def bookings_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    status = choice(query, "status", BookingStatus)
    async with request.app.state.database.read_session() as session:
        page = await booking_lists.list_bookings(
            session,
            guest_id=id_field(query, "guest"),
            host_id=id_field(query, "host"),
            where=booking_lists.BookingFilter(
                status=status.value if status else None,
                listing_id=id_field(query, "listing"),
                start=date_field(query, "from"),
                end=date_field(query, "to"),
            ),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
            newest_first=True,
        )
    return render(
        request,
        "bookings.html",
        admin=admin,
        bookings=page.bookings,
        **await paging(request, page),
        query=query,
        statuses=list(BookingStatus),
    )


@admin_only
async def booking(request: Request, admin: Admin) -> Response:
    booking_id: int = request.path_params["booking_id"]
    loaders = Loaders(request.app.state.database)
    found = await loaders.booking_by_id.load(booking_id)
    if found is None:
        raise NotFound("No such booking.")
    payout = await loaders.payout_by_booking.load(booking_id)
    async with request.app.state.database.read_session() as session:
        place = await listing_lists.summary(session, found.listing_id)
        payments = await payment_lists.list_payments(
            session, guest_id=None, booking_id=booking_id, first=DETAIL_ROWS
        )
        guest = await admin_users.emails(session, [found.guest_id])
        changes = await audit.list_entries(
            session, first=DETAIL_ROWS, subject=("Booking", booking_id)
        )
        actors = await actors_of(session, changes.entries)
    return render(
        request,
        "booking.html",
        admin=admin,
        booking=found,
        listing=place,
        guest_email=guest.get(found.guest_id, ""),
        payments=payments.payments,
        payout=payout,
        changes=changes.entries,
        actors=actors,
        done=done_message(request),
    )


@admin_only
async def payments_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    status = choice(query, "status", PaymentStatus)
    provider = choice(query, "provider", PaymentProvider)
    async with request.app.state.database.read_session() as session:
        page = await payment_lists.list_payments(
            session,
            guest_id=id_field(query, "guest"),
            status=status.value if status else None,
            provider=provider.value if provider else None,
            booking_id=id_field(query, "booking"),
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
        )
    return render(
        request,
        "payments.html",
        admin=admin,
        payments=page.payments,
        **await paging(request, page),
        query=query,
        statuses=list(PaymentStatus),
        providers=list(PaymentProvider),
    )


# The audit log.

SUBJECT_TYPES = ("User", "Listing", "Booking", "Payment", "Review", "Payout", "Dispute")


@admin_only
async def audit_page(request: Request, admin: Admin) -> Response:
    query = request.query_params
    subject_type = field(query, "subject_type", limit=40)
    subject_id = id_field(query, "subject_id")
    if (subject_type is None) != (subject_id is None):
        raise InvalidInput.field("subject_id", "give both the kind of subject and its id")
    if subject_type is not None and subject_type not in SUBJECT_TYPES:
        raise InvalidInput.field("subject_type", "is not one of the choices")
    subject = (subject_type, subject_id) if subject_type and subject_id else None
    async with request.app.state.database.read_session() as session:
        page = await audit.list_entries(
            session,
            first=PAGE_SIZE,
            after=field(query, "after", limit=500),
            action=field(query, "action", limit=100),
            actor_id=id_field(query, "actor"),
            subject=subject,
        )
        actors = await actors_of(session, page.entries)
    return render(
        request,
        "audit.html",
        admin=admin,
        entries=page.entries,
        actors=actors,
        **await paging(request, page),
        query=query,
        subject_types=SUBJECT_TYPES,
    )
