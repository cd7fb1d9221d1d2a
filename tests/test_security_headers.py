"""Security headers on every response: nosniff, no framing, no referrer, a Content-Security-
Policy that fits what the response is, and HSTS only when the request came over HTTPS."""

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from app.http import create_app
from tests.helpers import http_client, make_settings, running

API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


def assert_common_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


class PageAssets(HTMLParser):
    """The scripts and stylesheets a page loads, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.script_urls: list[str] = []
        self.style_urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.script_urls.append(values["src"])
        elif tag == "script":
            self._in_inline_script = True
            self.inline_scripts.append("")
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.style_urls.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def test_json_responses_may_load_nothing_and_never_be_framed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert_common_headers(response)
    assert response.headers["content-security-policy"] == API_POLICY
    assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_graphiql_gets_a_policy_that_lets_exactly_its_own_scripts_run(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_common_headers(response)
    page = PageAssets()
    page.feed(response.text)
    assert page.script_urls and page.inline_scripts  # the page as it is: both kinds
    directives = policy(response)
    scripts = directives["script-src"]
    assert directives["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    for inline in page.inline_scripts:
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert {origin(url) for url in page.script_urls} <= set(scripts)
    assert {origin(url) for url in page.style_urls} <= set(directives["style-src"])
    assert directives["connect-src"] == ["'self'"]


async def test_rest_errors_carry_the_headers_too(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    too_large = await client.post(
        "/graphql",
        content=b'{"query": "' + b"x" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert too_large.status_code == 413
    for response in (missing, too_large):
        assert_common_headers(response)
        assert response.headers["content-security-policy"] == API_POLICY


@pytest.fixture(scope="module")
async def behind_proxy(database_url: str):
    """Roost behind a proxy it trusts (httpx's ASGI transport calls from 127.0.0.1)."""
    settings = make_settings(database_url, trusted_proxies=["127.0.0.1"])
    async with running(create_app(settings)) as app, http_client(app) as client:
        yield client


async def test_hsts_only_when_a_trusted_proxy_says_the_request_came_over_https(
    behind_proxy: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    over_https = await behind_proxy.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert over_https.headers["strict-transport-security"] == "max-age=31536000"
    over_http = await behind_proxy.get("/healthz", headers={"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in over_http.headers
    # Nobody's X-Forwarded-Proto is believed without ROOST_TRUSTED_PROXIES.
    claimed = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in claimed.headers
    for response in (over_https, over_http, claimed):
        assert_common_headers(response)
