"""Access tokens, rotating refresh tokens with reuse detection, and the end of sessions."""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from auth.tokens import token_digest
from db.database import Database
from db.models import RefreshToken, User
from tests.accounts_helpers import (
    ME,
    PASSWORD,
    REFRESH,
    bearer,
    error_code,
    login,
    register,
    unique_email,
)
from tests.helpers import committed, gql

BECOME_HOST = "mutation { becomeHost { id } }"
JWT_SECRET = "test-secret-" + "x" * 40


async def refresh(client: httpx.AsyncClient, token: str) -> dict:
    return await gql(client, REFRESH, {"token": token})


async def test_an_access_token_carries_the_required_claims(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    token = payload["accessToken"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="roost-api")
    assert set(claims) == {"sub", "sid", "roles", "iat", "exp", "jti", "iss", "aud"}
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["iss"] == "roost"


async def test_a_refresh_token_is_opaque_long_and_stored_only_as_a_hash(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    raw = base64.urlsafe_b64decode(payload["refreshToken"] + "==")
    assert len(raw) * 8 >= 256
    async with database.read_session() as session:
        [stored] = (await session.scalars(select(RefreshToken.token_hash))).all()
    assert len(stored) == 32 and payload["refreshToken"].encode() not in stored


def forged_tokens(valid: str) -> dict[str, str]:
    claims = jwt.decode(valid, JWT_SECRET, algorithms=["HS256"], audience="roost-api")
    now = datetime.now(UTC)
    sign = lambda c, key=JWT_SECRET, **kw: jwt.encode(  # noqa: E731
        c, key, algorithm="HS256", headers={"typ": "at+jwt"}, **kw
    )
    header, body, _ = valid.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=")
    return {
        "wrong key": sign(claims, "another-secret-" + "y" * 40),
        "expired": sign({**claims, "iat": now - timedelta(hours=1), "exp": now - timedelta(1)}),
        "wrong audience": sign({**claims, "aud": "someone-else"}),
        "wrong issuer": sign({**claims, "iss": "evil"}),
        "no jti": sign({k: v for k, v in claims.items() if k != "jti"}),
        "alg none": f"{none_header.decode()}.{body}.",
        "tampered roles": ".".join(
            [
                header,
                base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["ADMIN"]}).encode())
                .rstrip(b"=")
                .decode(),
                valid.split(".")[2],
            ]
        ),
        "not a jwt": "garbage",
        "wrong type": jwt.encode(claims, JWT_SECRET, algorithm="HS256"),
    }


async def test_bad_access_tokens_are_refused_never_anonymous(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    cases = forged_tokens(payload["accessToken"])
    cases["refresh token as access token"] = payload["refreshToken"]
    for name, token in cases.items():
        reason = "TOKEN_EXPIRED" if name == "expired" else "TOKEN_INVALID"
        for query in (ME, BECOME_HOST):
            body = await gql(client, query, headers=bearer(token))
            assert body["data"] is None, name
            [error] = body["errors"]
            assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}, name


async def test_refreshing_rotates_the_refresh_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    first = await register(client)
    second = (await refresh(client, first["refreshToken"]))["data"]["refreshSession"]
    assert second["refreshToken"] != first["refreshToken"]
    me = await gql(client, ME, headers=bearer(second["accessToken"]))
    assert me["data"]["me"]["id"] == first["user"]["id"]
    third = await refresh(client, second["refreshToken"])
    assert "errors" not in third


async def test_a_reused_refresh_token_ends_the_whole_session(
    client: httpx.AsyncClient, database: Database
) -> None:
    first = await register(client)
    successor = (await refresh(client, first["refreshToken"]))["data"]["refreshSession"]

    reuse = await refresh(client, first["refreshToken"])  # a copy replayed
    assert error_code(reuse) == "UNAUTHENTICATED"
    assert error_code(await refresh(client, successor["refreshToken"])) == "UNAUTHENTICATED"
    assert error_code(await refresh(client, first["refreshToken"])) == "UNAUTHENTICATED"


async def test_a_successor_left_unrevoked_cannot_revive_an_ended_session(
    client: httpx.AsyncClient, database: Database
) -> None:
    """A revocation racing a refresh may miss the successor the refresh inserts; the session
    has ended all the same."""
    first = await register(client)
    successor = (await refresh(client, first["refreshToken"]))["data"]["refreshSession"]
    async with committed(database) as session:
        # What that race leaves behind: the rotated token revoked, its successor not.
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_digest(first["refreshToken"]))
            .values(revoked_at=datetime.now(UTC))
        )
    assert error_code(await refresh(client, successor["refreshToken"])) == "UNAUTHENTICATED"


async def test_reuse_ends_only_that_session(client: httpx.AsyncClient, database: Database) -> None:
    email = unique_email()
    laptop = await register(client, email=email)
    phone = (await login(client, email))["data"]["login"]
    await refresh(client, laptop["refreshToken"])
    await refresh(client, laptop["refreshToken"])  # reuse on the laptop's session
    assert "errors" not in await refresh(client, phone["refreshToken"])


async def test_two_concurrent_uses_of_one_refresh_token_one_succeeds(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    for _ in range(3):
        token = payload["refreshToken"]
        results = await asyncio.gather(*(refresh(client, token) for _ in range(2)))
        winners = [r for r in results if "errors" not in r]
        losers = [r for r in results if "errors" in r]
        assert len(winners) == 1 and len(losers) == 1
        assert error_code(losers[0]) == "UNAUTHENTICATED"
        # The loser replayed a retired token, so the session is over; start another.
        payload = (await login(client, payload["user"]["email"]))["data"]["login"]


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    async with committed(database) as session:
        await session.execute(
            update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert error_code(await refresh(client, payload["refreshToken"])) == "UNAUTHENTICATED"


async def test_logout_ends_the_session(client: httpx.AsyncClient, database: Database) -> None:
    payload = await register(client)
    query = "mutation($t: String!) { logout(refreshToken: $t) }"
    assert await gql(client, query, {"t": payload["refreshToken"]}) == {"data": {"logout": True}}
    assert error_code(await refresh(client, payload["refreshToken"])) == "UNAUTHENTICATED"
    assert await gql(client, query, {"t": payload["refreshToken"]}) == {"data": {"logout": False}}


async def make_admin(database: Database, email: str) -> None:
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == email).values(roles=["GUEST", "ADMIN"])
        )


async def test_a_suspended_user_is_shut_out_at_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin_email = unique_email("admin")
    admin = await register(client, email=admin_email)
    await make_admin(database, admin_email)
    guest = await register(client)

    body = await gql(
        client,
        "mutation($id: ID!) { suspendUser(userId: $id) { id } }",
        {"id": guest["user"]["id"]},
        headers=bearer(admin["accessToken"]),
    )
    assert "errors" not in body, body

    for query in (ME, BECOME_HOST):
        body = await gql(client, query, headers=bearer(guest["accessToken"]))
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {
            "code": "UNAUTHENTICATED",
            "reason": "TOKEN_INVALID",
        }
    assert error_code(await refresh(client, guest["refreshToken"])) == "UNAUTHENTICATED"
    assert error_code(await login(client, guest["user"]["email"])) == "UNAUTHENTICATED"


async def test_only_an_admin_may_suspend(client: httpx.AsyncClient, database: Database) -> None:
    guest = await register(client)
    other = await register(client)
    body = await gql(
        client,
        "mutation($id: ID!) { suspendUser(userId: $id) { id } }",
        {"id": other["user"]["id"]},
        headers=bearer(guest["accessToken"]),
    )
    assert error_code(body) == "FORBIDDEN"


async def test_a_demoted_admin_loses_admin_powers_at_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email("admin")
    await register(client, email=email)
    await make_admin(database, email)
    admin = (await login(client, email))["data"]["login"]  # a token that says ADMIN
    async with committed(database) as session:
        await session.execute(update(User).where(User.email == email).values(roles=["GUEST"]))
    victim = await register(client)
    body = await gql(
        client,
        "mutation($id: ID!) { suspendUser(userId: $id) { id } }",
        {"id": victim["user"]["id"]},
        headers=bearer(admin["accessToken"]),
    )
    assert error_code(body) == "FORBIDDEN"


async def test_a_password_change_ends_other_sessions(
    client: httpx.AsyncClient, database: Database
) -> None:
    email = unique_email()
    laptop = await register(client, email=email)
    phone = (await login(client, email))["data"]["login"]
    body = await gql(
        client,
        """mutation($c: String!, $n: String!) {
             changePassword(currentPassword: $c, newPassword: $n) { refreshToken }
           }""",
        {"c": PASSWORD, "n": "a brand new passphrase"},
        headers=bearer(laptop["accessToken"]),
    )
    fresh = body["data"]["changePassword"]
    assert error_code(await refresh(client, phone["refreshToken"])) == "UNAUTHENTICATED"
    assert error_code(await refresh(client, laptop["refreshToken"])) == "UNAUTHENTICATED"
    assert "errors" not in await refresh(client, fresh["refreshToken"])
    assert error_code(await login(client, email)) == "UNAUTHENTICATED"
    assert "errors" not in await login(client, email, "a brand new passphrase")


async def test_a_password_change_needs_the_current_password(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    body = await gql(
        client,
        """mutation { changePassword(currentPassword: "wrong one", newPassword: "whatever123x")
                      { refreshToken } }""",
        headers=bearer(payload["accessToken"]),
    )
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"currentPassword": "is not right"},
    }


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer  ", "token"])
async def test_odd_authorization_headers_are_invalid_tokens(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": header})
    assert response.json()["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "TOKEN_INVALID",
    }
