"""Pages and refusals of the dashboard: Jinja templates, every value escaped, and headers that
let a page load its own stylesheet and nothing else."""

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from functools import cache, wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.admin.session import (
    PATH,
    SESSION_COOKIE,
    Admin,
    forget,
    read_form,
    same_origin,
    signed_in_admin,
    tokens_match,
)
from services.errors import DomainError, InvalidInput
from services.money import Money

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = Path(__file__).parent / "static" / "admin.css"
SIGN_IN = f"{PATH}/login"
# No scripts at all, styles from /admin/static only, forms posted back here only.
POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
# What an admin's pages show is private: no cache, shared or not, keeps it. The referrer goes
# to this origin only, never elsewhere; under the API's "no-referrer" a browser would send
# "Origin: null" with the forms, and the Origin check could not tell them from a forgery.
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def _money(minor: int | None, currency: str) -> str:
    return "" if minor is None else Money(minor, currency).formatted()


def _when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _as_json(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every page is HTML: whatever a user wrote is shown, never run
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_money, when=_when, as_json=_as_json)
    return env


def render(
    request: Request,
    template: str,
    *,
    admin: Admin | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = (
        environment()
        .get_template(template)
        .render(
            admin=admin.user if admin else None,
            csrf=admin.csrf if admin else "",
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def page_url(request: Request, **changes: str | None) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: v for k, v in changes.items() if v is not None})
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def refused(request: Request, admin: Admin | None) -> HTMLResponse:
    return render(
        request,
        "error.html",
        admin=admin,
        status=403,
        title="Refused",
        message="This form did not come from this dashboard, or it has expired: nothing was "
        "changed. Reload the page and try again.",
        fields={},
    )


def error_page(request: Request, admin: Admin, error: DomainError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        admin=admin,
        status=error.http_status,
        title="Not done" if request.method == "POST" else "Cannot show this",
        message=error.message,
        fields=error.fields if isinstance(error, InvalidInput) else {},
    )


AdminHandler = Callable[[Request, Admin], Awaitable[Response]]


def admin_only(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """Only for a signed-in admin (anyone else goes to the sign-in page); a POST must also
    carry its form's CSRF token and come from this origin, or nothing runs."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        admin = await signed_in_admin(request)
        if admin is None:
            response = redirect(SIGN_IN)
            if SESSION_COOKIE in request.cookies:
                forget(request, response, SESSION_COOKIE)
            return response
        if request.method == "POST":
            form = await read_form(request)
            if (
                form is None
                or not same_origin(request)
                or not tokens_match(form.get("csrf"), admin.csrf)
            ):
                return refused(request, admin)
        try:
            return await handler(request, admin)
        except DomainError as error:
            return error_page(request, admin, error)

    return endpoint


def field(values: Mapping[str, Any], name: str, *, limit: int = 200) -> str | None:
    """A text field or query parameter, trimmed; None when absent or blank."""
    value = values.get(name)
    if not isinstance(value, str):
        return None
    if len(value) > limit:
        raise InvalidInput.field(name, f"must be at most {limit} characters")
    return value.strip() or None


_MAX_ID = 2**63 - 1


def id_field(values: Mapping[str, Any], name: str) -> int | None:
    value = field(values, name, limit=20)
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= _MAX_ID:
        raise InvalidInput.field(name, "must be a number (an id)")
    return int(value)


Choice = TypeVar("Choice", bound=StrEnum)


def choice(values: Mapping[str, Any], name: str, options: type[Choice]) -> Choice | None:
    value = field(values, name, limit=40)
    if value is None:
        return None
    try:
        return options(value)
    except ValueError:
        raise InvalidInput.field(name, "is not one of the choices") from None


def date_field(values: Mapping[str, Any], name: str) -> date | None:
    value = field(values, name, limit=10)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput.field(name, "must be a date (YYYY-MM-DD)") from None
