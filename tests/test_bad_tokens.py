"""A token that does not verify is refused, never taken for an anonymous caller.

Over GraphQL the whole operation fails before anything runs (data null, one UNAUTHENTICATED
error whose ``reason`` is TOKEN_EXPIRED or TOKEN_INVALID), with HTTP 200; over REST it is a 401
with the RFC 6750 challenge. A client that sends no Authorization header stays anonymous.
"""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from db.database import Database
from db.models import User
from tests.accounts_helpers import ME, REGISTER, bearer, register, unique_email
from tests.helpers import gql
from tests.upload_helpers import image_bytes, upload

JWT_SECRET = "test-secret-" + "x" * 40
SEARCH = "{ searchListings(first: 5) { totalCount } }"
OPERATIONS = {
    "me": ME,
    "a mutation": "mutation { becomeHost { id } }",
    "a public query": SEARCH,
    "__typename": "{ __typename }",
}
INVALID_MESSAGE = (
    "Your access token is not valid or its session has ended; refresh the session, "
    "or sign in again."
)
EXPIRED_MESSAGE = "Your access token has expired; refresh the session and try again."


def refused(reason: str) -> dict:
    message = EXPIRED_MESSAGE if reason == "TOKEN_EXPIRED" else INVALID_MESSAGE
    return {
        "data": None,
        "errors": [
            {"message": message, "extensions": {"code": "UNAUTHENTICATED", "reason": reason}}
        ],
    }


def sign(claims: dict, key: str = JWT_SECRET, typ: str | None = "at+jwt") -> str:
    headers = {"typ": typ} if typ else None
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def bad_tokens(valid: str, refresh_token: str) -> dict[str, tuple[str, str]]:
    """Tokens a client might send, each with the reason it must be refused for."""
    claims = jwt.decode(valid, JWT_SECRET, algorithms=["HS256"], audience="roost-api")
    now = datetime.now(UTC)
    expired = {**claims, "iat": now - timedelta(hours=1), "exp": now - timedelta(seconds=1)}
    without = lambda name: {k: v for k, v in claims.items() if k != name}  # noqa: E731
    header, body, signature = valid.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=")
    admin_body = base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["ADMIN"]}).encode())
    invalid = {
        "wrong key": sign(claims, "another-secret-" + "y" * 40),
        "expired and wrong key": sign(expired, "another-secret-" + "y" * 40),
        "expired and wrong audience": sign({**expired, "aud": "someone-else"}),
        "wrong audience": sign({**claims, "aud": "someone-else"}),
        "wrong issuer": sign({**claims, "iss": "evil"}),
        "no jti": sign(without("jti")),
        "no session (an older token)": sign(without("sid")),
        "session not a uuid": sign({**claims, "sid": "not-a-uuid"}),
        "sub past int64": sign({**claims, "sub": "99999999999999999999"}),
        "sub zero": sign({**claims, "sub": "0"}),
        "sub negative": sign({**claims, "sub": "-5"}),
        "sub not a number": sign({**claims, "sub": "alice"}),
        "sub with spaces": sign({**claims, "sub": " 1"}),
        "exp not a number": sign({**claims, "exp": "tomorrow"}),
        "alg none": f"{none_header.decode()}.{body}.",
        "tampered roles": f"{header}.{admin_body.rstrip(b'=').decode()}.{signature}",
        "not a jwt": "garbage",
        "no typ header": sign(claims, typ=None),
        "refresh token": refresh_token,
    }
    return {"expired": (sign(expired), "TOKEN_EXPIRED")} | {
        name: (token, "TOKEN_INVALID") for name, token in invalid.items()
    }


async def test_every_bad_token_fails_every_operation_before_it_runs(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    for name, (token, reason) in bad_tokens(
        payload["accessToken"], payload["refreshToken"]
    ).items():
        for operation, query in OPERATIONS.items():
            response = await client.post("/graphql", json={"query": query}, headers=bearer(token))
            assert response.status_code == 200, (name, operation)
            assert response.json() == refused(reason), (name, operation)


async def test_a_refused_mutation_changes_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    expired = bad_tokens(payload["accessToken"], payload["refreshToken"])["expired"][0]
    variables = {
        "input": {
            "email": unique_email(),
            "password": "correct horse battery staple",
            "firstName": "Eve",
            "lastName": "Late",
        }
    }
    body = await gql(client, REGISTER, variables, headers=bearer(expired))
    assert body == refused("TOKEN_EXPIRED")
    async with database.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize("header", ["Bearer", "Bearer  ", "Basic abc", "token", ""])
async def test_an_authorization_header_that_is_no_bearer_token_is_invalid(
    client: httpx.AsyncClient, header: str
) -> None:
    body = await gql(client, ME, headers={"Authorization": header})
    assert body == refused("TOKEN_INVALID")


async def test_the_scheme_is_case_insensitive(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    body = await gql(client, ME, headers={"Authorization": f"bearer {payload['accessToken']}"})
    assert body["data"]["me"]["id"] == payload["user"]["id"]


async def test_no_header_is_an_anonymous_caller(
    client: httpx.AsyncClient, database: Database
) -> None:
    assert await gql(client, ME) == {"data": {"me": None}}
    assert await gql(client, SEARCH) == {"data": {"searchListings": {"totalCount": 0}}}


async def test_a_cached_public_answer_is_not_given_to_a_bad_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    assert "errors" not in await gql(client, SEARCH)  # now in the response cache
    assert "errors" not in await gql(client, SEARCH)
    assert await gql(client, SEARCH, headers=bearer("garbage")) == refused("TOKEN_INVALID")


async def test_an_unknown_user_with_a_good_signature_is_not_an_error(
    client: httpx.AsyncClient, database: Database
) -> None:
    """A token we signed for a session that is not revoked but whose user is gone: the token
    verifies, so the request runs; there is simply no such user."""
    token = sign(
        {
            "sub": "123456789",
            "sid": str(uuid.uuid4()),
            "roles": ["GUEST"],
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(minutes=5),
            "jti": uuid.uuid4().hex,
            "iss": "roost",
            "aud": "roost-api",
        }
    )
    assert await gql(client, ME, headers=bearer(token)) == {"data": {"me": None}}


CHALLENGE = 'Bearer realm="roost", error="invalid_token"'


async def test_an_upload_with_a_bad_token_is_a_401_that_says_why(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    tokens = bad_tokens(payload["accessToken"], payload["refreshToken"])
    for name in ("expired", "wrong key", "sub past int64", "not a jwt"):
        token, reason = tokens[name]
        response = await upload(client, image_bytes(), token=token)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == CHALLENGE, name
        error = response.json()["error"]
        assert error == {
            "code": "UNAUTHENTICATED",
            "message": EXPIRED_MESSAGE if reason == "TOKEN_EXPIRED" else INVALID_MESSAGE,
            "reason": reason,
        }, name


async def test_an_upload_with_an_ended_session_is_a_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    await gql(
        client, "mutation($t: String!) { logout(refreshToken: $t) }", {"t": payload["refreshToken"]}
    )
    response = await upload(client, image_bytes(), token=payload["accessToken"])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json()["error"]["reason"] == "TOKEN_INVALID"


async def test_an_upload_without_a_token_is_challenged(client: httpx.AsyncClient) -> None:
    response = await upload(client, image_bytes(), token=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="roost"'
    assert response.json() == {
        "error": {"code": "UNAUTHENTICATED", "message": "You need to sign in."}
    }
