"""``node(id:)`` and the User type."""

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from strawberry.relay import to_base64

from db.database import Database
from tests.factories import make_user
from tests.helpers import StatementCounter, committed, gql

USER_NODE = """
query($id: ID!) {
  node(id: $id) { __typename id ... on User { firstName lastName email roles createdAt } }
}
"""


async def test_a_user_is_found_by_its_global_id(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with committed(database) as session:
        user = await make_user(session, first_name="Kenji", roles=["GUEST", "HOST"])
    global_id = to_base64("User", user.id)

    body = await gql(client, USER_NODE, {"id": global_id})

    node = body["data"]["node"]
    assert node["__typename"] == "User"
    assert node["id"] == global_id
    assert node["firstName"] == "Kenji"
    assert node["roles"] == ["GUEST", "HOST"]
    assert node["createdAt"].endswith("+00:00")


async def test_an_anonymous_viewer_does_not_see_the_email(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with committed(database) as session:
        user = await make_user(session)
    body = await gql(client, USER_NODE, {"id": to_base64("User", user.id)})
    assert body["data"]["node"]["email"] is None


async def test_an_id_of_a_row_that_does_not_exist_gives_null(
    client: httpx.AsyncClient, database: Database
) -> None:
    body = await gql(client, USER_NODE, {"id": to_base64("User", 999_999)})
    assert body == {"data": {"node": None}}


@pytest.mark.parametrize(
    "global_id",
    [
        to_base64("User", "not-a-number"),
        to_base64("User", 2**70),  # past a bigint
        to_base64("User", 0),
        to_base64("User", "007"),
        to_base64("User", "٣"),  # a digit, but not an ASCII one
        to_base64("Query", 1),  # a type, but not a Node
        to_base64("Node", 1),  # the interface itself
        to_base64("Nothing", 1),
    ],
)
async def test_an_id_that_is_not_a_roost_id_is_bad_user_input(
    client: httpx.AsyncClient, database: Database, global_id: str
) -> None:
    body = await gql(client, USER_NODE, {"id": global_id})
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"id": "is not the id of anything Roost has"},
    }


async def test_a_malformed_id_is_bad_user_input(client: httpx.AsyncClient) -> None:
    body = await gql(client, USER_NODE, {"id": "%%% not base64"})
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "fields": {"id": "is not a valid id"}}


async def test_many_nodes_in_one_request_load_in_one_statement(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with committed(database) as session:
        users = [await make_user(session) for _ in range(5)]
    selections = " ".join(
        f'u{i}: node(id: "{to_base64("User", user.id)}") {{ ... on User {{ firstName }} }}'
        for i, user in enumerate(users)
    )
    with StatementCounter(database) as counter:
        body = await gql(client, "{ " + selections + " }")
    assert len(body["data"]) == 5
    assert counter.count == 1


async def test_emails_are_unique_whatever_their_case(database: Database) -> None:
    async with committed(database) as session:
        await make_user(session, email="Maria@Example.com")
    with pytest.raises(IntegrityError, match="uq_user_account_email_lower"):
        async with committed(database) as session:
            await make_user(session, email="maria@example.COM")
