"""Profiles: names, bio, an encrypted phone, preferences, and who sees what."""

import httpx
import pytest
from sqlalchemy import select, update

from db.database import Database
from db.models import User
from tests.accounts_helpers import bearer, error_code, register, unique_email
from tests.helpers import committed, gql
from tests.upload_helpers import image_bytes, upload

UPDATE = """
mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    firstName lastName bio phone
    preferences { currency language timeZone notificationChannels }
  }
}
"""
USER = """
query($id: ID!) { node(id: $id) { ... on User { firstName email phone preferences { currency } } } }
"""


async def test_a_user_updates_their_profile(client: httpx.AsyncClient, database: Database) -> None:
    payload = await register(client)
    body = await gql(
        client,
        UPDATE,
        {
            "input": {
                "firstName": "  Beatriz ",
                "bio": "Surfer and cook.",
                "phone": "+351 912 345 678",
                "preferences": {
                    "currency": "EUR",
                    "language": "pt-PT",
                    "timeZone": "Europe/Lisbon",
                    "notificationChannels": ["EMAIL", "SMS"],
                },
            }
        },
        headers=bearer(payload["accessToken"]),
    )
    assert body == {
        "data": {
            "updateProfile": {
                "firstName": "Beatriz",
                "lastName": "Silva",
                "bio": "Surfer and cook.",
                "phone": "+351912345678",
                "preferences": {
                    "currency": "EUR",
                    "language": "pt-PT",
                    "timeZone": "Europe/Lisbon",
                    "notificationChannels": ["EMAIL", "SMS"],
                },
            }
        }
    }


async def test_left_out_fields_stay_and_null_clears(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    headers = bearer(payload["accessToken"])
    await gql(client, UPDATE, {"input": {"bio": "Hello", "phone": "+14155550123"}}, headers=headers)
    body = await gql(client, UPDATE, {"input": {"lastName": "Costa"}}, headers=headers)
    assert body["data"]["updateProfile"]["bio"] == "Hello"
    assert body["data"]["updateProfile"]["phone"] == "+14155550123"
    body = await gql(client, UPDATE, {"input": {"phone": None, "bio": None}}, headers=headers)
    assert body["data"]["updateProfile"]["phone"] is None
    assert body["data"]["updateProfile"]["bio"] is None


async def test_bad_profile_input_is_refused_field_by_field(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    body = await gql(
        client,
        UPDATE,
        {
            "input": {
                "firstName": "",
                "phone": "0912345678",
                "bio": "x" * 2_001,
                "preferences": {"currency": "euro", "timeZone": "Mars/Olympus"},
            }
        },
        headers=bearer(payload["accessToken"]),
    )
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {
            "firstName": "must not be empty",
            "phone": "must be an international number in E.164 form, like +14155550123",
            "bio": "must be at most 2000 characters long",
            "preferences.currency": "must be an ISO 4217 code, like EUR",
            "preferences.timeZone": "must be an IANA time zone, like Europe/Lisbon",
        },
    }
    me = await gql(client, "{ me { firstName } }", headers=bearer(payload["accessToken"]))
    assert me["data"]["me"]["firstName"] == "Ana"  # nothing was changed


async def test_the_phone_number_is_not_readable_in_the_database(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = await register(client)
    await gql(
        client,
        UPDATE,
        {"input": {"phone": "+14155550123"}},
        headers=bearer(payload["accessToken"]),
    )
    async with database.read_session() as session:
        stored = await session.scalar(select(User.phone_encrypted))
    assert stored.startswith("v1.")
    assert "4155550123" not in stored


async def test_another_user_sees_no_email_phone_or_preferences_but_an_admin_does(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await register(client)
    await gql(
        client, UPDATE, {"input": {"phone": "+14155550123"}}, headers=bearer(owner["accessToken"])
    )
    stranger = await register(client)
    admin_email = unique_email("admin")
    admin = await register(client, email=admin_email)
    async with committed(database) as session:
        await session.execute(
            update(User).where(User.email == admin_email).values(roles=["GUEST", "ADMIN"])
        )

    variables = {"id": owner["user"]["id"]}
    seen_by_stranger = await gql(client, USER, variables, headers=bearer(stranger["accessToken"]))
    assert seen_by_stranger["data"]["node"] == {
        "firstName": "Ana",
        "email": None,
        "phone": None,
        "preferences": None,
    }
    seen_by_admin = await gql(client, USER, variables, headers=bearer(admin["accessToken"]))
    assert seen_by_admin["data"]["node"]["email"] == owner["user"]["email"]
    assert seen_by_admin["data"]["node"]["phone"] == "+14155550123"
    assert seen_by_admin["data"]["node"]["preferences"] == {"currency": "USD"}


async def test_updating_a_profile_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    body = await gql(client, UPDATE, {"input": {"bio": "hi"}})
    assert error_code(body) == "UNAUTHENTICATED"


PROFILE = """
{ me { firstName lastName bio phone avatarUrl
       preferences { currency language timeZone notificationChannels } } }
"""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"firstName": "Ana\u0000"}, "firstName"),
        ({"lastName": "\u0000Costa"}, "lastName"),
        ({"firstName": "x" * 101}, "firstName"),
        ({"bio": "Hi\u0000"}, "bio"),
        ({"phone": "+1415555\u00000123"}, "phone"),
        ({"preferences": {"currency": "EU\u0000", "language": "pt"}}, "preferences.currency"),
        ({"preferences": {"currency": "EUR\n"}}, "preferences.currency"),
        ({"preferences": {"language": "pt\n"}}, "preferences.language"),
        ({"phone": "+14155550124\n"}, "phone"),
    ],
)
async def test_a_refused_profile_change_with_an_avatar_changes_nothing(
    client: httpx.AsyncClient, database: Database, change: dict, field: str
) -> None:
    # Looking the avatar up used to write the values already set on the user first: a NUL
    # character then failed in PostgreSQL as INTERNAL_SERVER_ERROR instead of BAD_USER_INPUT.
    token = (await register(client))["accessToken"]
    headers = bearer(token)
    await gql(client, UPDATE, {"input": {"bio": "Hello", "phone": "+14155550123"}}, headers=headers)
    avatar = (await upload(client, image_bytes(), token=token)).json()
    before = (await gql(client, PROFILE, headers=headers))["data"]
    body = await gql(
        client, UPDATE, {"input": {**change, "avatarUploadId": avatar["id"]}}, headers=headers
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert set(body["errors"][0]["extensions"]["fields"]) == {field}
    assert (await gql(client, PROFILE, headers=headers))["data"] == before
