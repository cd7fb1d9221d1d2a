"""Who is signed in to the dashboard, and whether a form really came from it.

The session cookie holds a refresh token of a sign-in session (services/sessions.py), never
rotated by the dashboard: every request asks the database whether that session is still live
and its account an active admin, so a sign-out, a suspension, a forced password reset or the
loss of the ADMIN role ends it at the next request. The cookie is HttpOnly, SameSite=Strict,
scoped to /admin, and Secure in production.

Every form carries a CSRF token: for a signed-in admin, an HMAC of the session's secret (so it
is per session, and useless without the cookie); on the sign-in form, a random value also set
in a cookie of its own (a double submit, since there is no session yet). Both are compared in
constant time, and a POST whose Origin (or Sec-Fetch-Site) names another site is refused too.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from auth import rules
from db.rows import UserRow
from services import sessions

PATH = "/admin"
SESSION_COOKIE = "roost_admin_session"
LOGIN_COOKIE = "roost_admin_signin"
# An admin's session ends after a working day, however long the API's sessions live.
SESSION_LIFETIME = timedelta(hours=12)
SIGN_IN_FORM_LIFETIME = timedelta(hours=1)
# Longer than any token we issue (43 characters): a longer cookie is not ours, unasked.
_MAX_CREDENTIAL = 200
_CSRF_PURPOSE = b"roost-admin-csrf"
# Forms hold a few short fields: no files, nothing large.
MAX_FIELDS = 40
MAX_FIELD_BYTES = 8192


@dataclass(frozen=True)
class Admin:
    user: UserRow
    credential: str
    """The session's refresh token, from the cookie."""

    @property
    def csrf(self) -> str:
        return csrf_token(self.credential)


def csrf_token(credential: str) -> str:
    return hmac.new(credential.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def tokens_match(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)


def services(request: Request) -> Any:
    # Read per request: tests swap the app's services (a clock, fresh rate limits).
    return request.app.state.services


async def signed_in_admin(request: Request) -> Admin | None:
    """The admin whose live session the cookie names; None for anyone else."""
    credential = request.cookies.get(SESSION_COOKIE)
    if not credential or len(credential) > _MAX_CREDENTIAL:
        return None
    async with request.app.state.database.read_session() as session:
        user = await sessions.holder(session, refresh_token=credential)
        row = UserRow.of(user) if user is not None else None
    if row is None or not rules.is_admin(row):
        return None
    return Admin(row, credential)


def same_origin(request: Request) -> bool:
    """Whether the browser says the request came from a page of this origin (a browser that
    says nothing, an old one or a script, is left to the CSRF token)."""
    origin = request.headers.get("origin")
    if origin is not None:
        # As this request reached us, or as the public URL names us (behind a proxy that
        # terminates TLS without saying so, the request looks like plain HTTP).
        public = urlsplit(request.app.state.settings.public_url)
        allowed = (
            f"{request.url.scheme}://{request.url.netloc}",
            f"{public.scheme}://{public.netloc}",
        )
        return any(hmac.compare_digest(origin.encode(), own.encode()) for own in allowed)
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


async def read_form(request: Request) -> FormData | None:
    """The posted form, or None when it is not a small urlencoded or multipart form."""
    try:
        return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except (MultiPartException, HTTPException, UnicodeDecodeError):
        return None


def _cookie_options(request: Request) -> dict[str, Any]:
    return {
        "path": PATH,
        "httponly": True,
        "samesite": "strict",
        "secure": bool(request.app.state.settings.is_production),
    }


def set_session_cookie(request: Request, response: Response, credential: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        credential,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        **_cookie_options(request),
    )


def set_sign_in_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=int(SIGN_IN_FORM_LIFETIME.total_seconds()),
        **_cookie_options(request),
    )


def forget(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, **_cookie_options(request))
