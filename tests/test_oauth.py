"""Sign-in with Google and Facebook, end to end against local fake providers over HTTP."""

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select, text

from app.http import create_app
from auth.oauth import pkce_pair
from db.database import Database
from db.models import OAuthIdentity
from tests.accounts_helpers import register, unique_email
from tests.fakes.oauth_providers import FakeProviders, challenge_of
from tests.helpers import gql, http_client, make_settings, running, serving

REDIRECT = "http://localhost:3000/auth/callback"
OAUTH_LOGIN = """
mutation($input: OAuthLoginInput!) {
  loginWithOAuth(input: $input) { accessToken refreshToken user { id email firstName } }
}
"""


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeProviders, str]]:
    providers = FakeProviders()
    async with serving(providers.app()) as base_url:
        yield providers, base_url


@pytest.fixture
async def oauth_client(
    fakes: tuple[FakeProviders, str], database_url: str, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    _, base_url = fakes
    settings = make_settings(database_url, **FakeProviders.settings_for(base_url))
    async with running(create_app(settings)) as app, http_client(app) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, provider: str, code: str, verifier=None) -> dict:
    return await gql(
        client,
        OAUTH_LOGIN,
        {
            "input": {
                "provider": provider,
                "code": code,
                "redirectUri": REDIRECT,
                "codeVerifier": verifier,
            }
        },
    )


async def identities(database: Database) -> list[tuple[str, str, int]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(OAuthIdentity.provider, OAuthIdentity.subject, OAuthIdentity.user_id)
        )
        return [tuple(row) for row in rows]


async def test_google_sign_in_creates_an_account_then_signs_into_it(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    verifier, _ = pkce_pair()
    code = providers.google_code(
        subject="g-123", email="gabi@example.com", redirect_uri=REDIRECT, code_verifier=verifier
    )
    first = await sign_in(oauth_client, "GOOGLE", code, verifier)
    user = first["data"]["loginWithOAuth"]["user"]
    assert user["email"] == "gabi@example.com"
    assert user["firstName"] == "Gabriela"

    again = providers.google_code(subject="g-123", email="gabi@example.com", redirect_uri=REDIRECT)
    second = await sign_in(oauth_client, "GOOGLE", again)
    assert second["data"]["loginWithOAuth"]["user"]["id"] == user["id"]
    assert len(await identities(database)) == 1
    me = await gql(
        oauth_client,
        "{ me { emailVerified } }",
        headers={"Authorization": f"Bearer {second['data']['loginWithOAuth']['accessToken']}"},
    )
    assert me["data"]["me"]["emailVerified"] is True


async def test_a_verified_google_email_links_to_the_existing_account(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    email = unique_email()
    existing = await register(oauth_client, email=email)
    code = providers.google_code(subject="g-link", email=email.upper(), redirect_uri=REDIRECT)
    body = await sign_in(oauth_client, "GOOGLE", code)
    assert body["data"]["loginWithOAuth"]["user"]["id"] == existing["user"]["id"]


async def test_an_unverified_google_email_neither_links_nor_signs_in(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    email = unique_email()
    await register(oauth_client, email=email)
    code = providers.google_code(
        subject="g-unverified", email=email, email_verified=False, redirect_uri=REDIRECT
    )
    body = await sign_in(oauth_client, "GOOGLE", code)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await identities(database) == []


@pytest.mark.parametrize("tamper", ["other key", "edited claims"])
async def test_a_tampered_id_token_is_refused(
    fakes: tuple[FakeProviders, str],
    oauth_client: httpx.AsyncClient,
    database: Database,
    tamper: str,
) -> None:
    providers, _ = fakes
    code = providers.google_code(
        subject="g-evil", email="evil@example.com", redirect_uri=REDIRECT, tamper=tamper
    )
    body = await sign_in(oauth_client, "GOOGLE", code)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await identities(database) == []


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-app"},
        {"iss": "https://evil.example"},
        {"exp": 1_000_000_000, "iat": 999_999_000},
    ],
    ids=["wrong audience", "wrong issuer", "expired"],
)
async def test_an_id_token_for_someone_else_is_refused(
    fakes: tuple[FakeProviders, str],
    oauth_client: httpx.AsyncClient,
    database: Database,
    claims: dict,
) -> None:
    providers, _ = fakes
    code = providers.google_code(
        subject="g-x", email="x@example.com", redirect_uri=REDIRECT, **claims
    )
    body = await sign_in(oauth_client, "GOOGLE", code)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_wrong_pkce_verifier_or_a_reused_code_is_refused(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    verifier, _ = pkce_pair()
    code = providers.google_code(
        subject="g-pkce", email="p@example.com", redirect_uri=REDIRECT, code_verifier=verifier
    )
    wrong = await sign_in(oauth_client, "GOOGLE", code, "not-the-verifier")
    assert wrong["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    reused = await sign_in(oauth_client, "GOOGLE", code, verifier)  # the fake spent it
    assert reused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_facebook_sign_in_creates_and_links(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    code = providers.facebook_code(user_id="fb-1", email="femi@example.com", redirect_uri=REDIRECT)
    body = await sign_in(oauth_client, "FACEBOOK", code)
    user = body["data"]["loginWithOAuth"]["user"]
    assert (user["email"], user["firstName"]) == ("femi@example.com", "Femi")

    code = providers.google_code(subject="g-femi", email="femi@example.com", redirect_uri=REDIRECT)
    linked = await sign_in(oauth_client, "GOOGLE", code)
    assert linked["data"]["loginWithOAuth"]["user"]["id"] == user["id"]
    assert {provider for provider, _, _ in await identities(database)} == {"FACEBOOK", "GOOGLE"}


async def test_a_facebook_account_without_an_email_cannot_sign_up(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    code = providers.facebook_code(user_id="fb-2", email=None, redirect_uri=REDIRECT)
    body = await sign_in(oauth_client, "FACEBOOK", code)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_provider_that_is_not_configured_is_bad_input(
    client: httpx.AsyncClient,
) -> None:
    body = await sign_in(client, "GOOGLE", "any-code")
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"provider": "is not enabled on this server"},
    }


async def test_the_authorize_helper_builds_the_provider_url(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient
) -> None:
    _, base_url = fakes
    response = await oauth_client.get("/oauth/google/authorize", params={"redirect_uri": REDIRECT})
    assert response.status_code == 200
    body = response.json()
    url = urlparse(body["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{base_url}/google/auth"
    assert query["state"] == body["state"]
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == REDIRECT
    assert query["client_id"] == "roost-test-client"
    assert query["code_challenge"] == challenge_of(body["codeVerifier"])

    elsewhere = await oauth_client.get(
        "/oauth/google/authorize", params={"redirect_uri": "https://evil.example/cb"}
    )
    assert elsewhere.status_code == 400
    unknown = await oauth_client.get("/oauth/myspace/authorize", params={"redirect_uri": REDIRECT})
    assert unknown.status_code == 404


async def test_no_token_of_a_provider_is_kept(
    fakes: tuple[FakeProviders, str], oauth_client: httpx.AsyncClient, database: Database
) -> None:
    providers, _ = fakes
    code = providers.google_code(subject="g-k", email="k@example.com", redirect_uri=REDIRECT)
    await sign_in(oauth_client, "GOOGLE", code)
    async with database.read_session() as session:
        columns = await session.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'oauth_identity'"
            )
        )
    assert {name for (name,) in columns} == {
        "id",
        "user_id",
        "provider",
        "subject",
        "email",
        "created_at",
    }


@pytest.mark.parametrize(
    ("given", "family", "first", "last"),
    [
        ("Ga\u0000bi", "Li\u001bma", "Gabi", "Lima"),
        ("x" * 500, "\u0000", "x" * 100, "-"),
        ("  ", "\t\n", "Guest", "-"),
    ],
)
async def test_names_from_a_provider_are_made_ones_roost_keeps(
    fakes: tuple[FakeProviders, str],
    oauth_client: httpx.AsyncClient,
    database: Database,
    given: str,
    family: str,
    first: str,
    last: str,
) -> None:
    providers, _ = fakes
    code = providers.google_code(
        subject=f"g-{unique_email()}",
        email=unique_email(),
        redirect_uri=REDIRECT,
        given_name=given,
        family_name=family,
    )
    body = await sign_in(oauth_client, "GOOGLE", code)
    token = body["data"]["loginWithOAuth"]["accessToken"]
    me = await gql(
        oauth_client, "{ me { firstName lastName } }", headers={"Authorization": f"Bearer {token}"}
    )
    assert me["data"]["me"] == {"firstName": first, "lastName": last}
