"""Admins find accounts, give and take roles and force password resets, each audited; and the
whole admin surface (every operation the API guide gives to admins) refuses everyone else."""

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    build_schema,
    get_named_type,
)
from starlette.applications import Starlette

from db.database import Database
from tests.accounts_helpers import (
    PASSWORD,
    bearer,
    error_code,
    login,
    mails_to,
    register,
    unique_email,
)
from tests.booking_helpers import a_place
from tests.helpers import gql
from tests.receipt_helpers import an_admin

ROOT = Path(__file__).parent.parent
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
API_GUIDE = (ROOT / "docs" / "api.md").read_text()

USERS = """
query($search: String, $role: Role, $status: UserStatus, $first: Int, $after: String) {
  users(search: $search, role: $role, status: $status, first: $first, after: $after) {
    edges { node { id email status roles } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
GRANT = "mutation($id: ID!, $role: Role!) { grantRole(userId: $id, role: $role) { id roles } }"
REMOVE = "mutation($id: ID!, $role: Role!) { removeRole(userId: $id, role: $role) { id roles } }"
FORCE_RESET = "mutation($id: ID!) { forcePasswordReset(userId: $id) { id } }"
SUSPEND = "mutation($id: ID!) { suspendUser(userId: $id) { id status } }"
AUDIT = "{ auditLog(first: 20) { edges { node { action before after subjectId } } } }"
CREATE_LISTING_PROBE = "{ me { roles } }"


async def emails(client: httpx.AsyncClient, admin: dict[str, str], **filters: object) -> list:
    body = await gql(client, USERS, filters, headers=admin)
    assert "errors" not in body, body
    return [edge["node"]["email"] for edge in body["data"]["users"]["edges"]]


async def test_admins_find_accounts_by_email_name_role_and_status(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    ana = await register(client, email="ana.costa@example.com", first_name="Ana")
    await register(client, email="bruno@example.com", first_name="Bruno")
    host = await register(client, email="carla_host@example.com", role="HOST")
    assert await emails(client, admin, search="COSTA") == ["ana.costa@example.com"]
    assert await emails(client, admin, search="bruno silva") == ["bruno@example.com"]
    # The wildcards of LIKE are plain characters in a search.
    assert await emails(client, admin, search="a_h") == ["carla_host@example.com"]
    assert await emails(client, admin, search="%") == []
    assert await emails(client, admin, role="HOST") == ["carla_host@example.com"]
    await gql(client, SUSPEND, {"id": ana["user"]["id"]}, headers=admin)
    assert await emails(client, admin, status="SUSPENDED") == ["ana.costa@example.com"]

    page = await gql(client, USERS, {"first": 2}, headers=admin)
    users = page["data"]["users"]
    assert users["totalCount"] == 4  # the admin too
    assert users["pageInfo"]["hasNextPage"] is True
    # Newest first, and a status only admins and the user see.
    assert users["edges"][0]["node"]["email"] == "carla_host@example.com"
    assert users["edges"][0]["node"]["status"] == "ACTIVE"
    seen_by_host = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on User { status } } }",
        {"id": ana["user"]["id"]},
        headers=bearer(host["accessToken"]),
    )
    assert seen_by_host == {"data": {"node": {"status": None}}}
    too_long = await gql(client, USERS, {"search": "x" * 101}, headers=admin)
    assert error_code(too_long) == "BAD_USER_INPUT"


async def test_roles_are_given_and_taken_at_the_next_request_and_audited(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    user = await register(client)
    user_id, token = user["user"]["id"], bearer(user["accessToken"])

    granted = await gql(client, GRANT, {"id": user_id, "role": "HOST"}, headers=admin)
    assert granted["data"]["grantRole"]["roles"] == ["GUEST", "HOST"]
    assert (await gql(client, CREATE_LISTING_PROBE, headers=token))["data"]["me"]["roles"] == [
        "GUEST",
        "HOST",
    ]
    removed = await gql(client, REMOVE, {"id": user_id, "role": "HOST"}, headers=admin)
    assert removed["data"]["removeRole"]["roles"] == ["GUEST"]
    guest = await gql(client, REMOVE, {"id": user_id, "role": "GUEST"}, headers=admin)
    assert error_code(guest) == "BAD_USER_INPUT"

    # The last active admin keeps ADMIN.
    me = (await gql(client, "{ me { id } }", headers=admin))["data"]["me"]["id"]
    last = await gql(client, REMOVE, {"id": me, "role": "ADMIN"}, headers=admin)
    assert error_code(last) == "CONFLICT"
    assert error_code(
        await gql(client, GRANT, {"id": "VXNlcjo5OTk5", "role": "HOST"}, headers=admin)
    ) == ("NOT_FOUND")

    log = (await gql(client, AUDIT, headers=admin))["data"]["auditLog"]["edges"]
    assert [edge["node"]["action"] for edge in log] == ["user.remove_role", "user.grant_role"]
    assert log[1]["node"]["after"] == {"roles": ["GUEST", "HOST"]}


async def test_a_forced_reset_signs_out_voids_the_password_and_mails_a_link(
    app: Starlette, client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    email = unique_email("forced")
    user = await register(client, email=email)
    body = await gql(client, FORCE_RESET, {"id": user["user"]["id"]}, headers=admin)
    assert "errors" not in body, body

    me = await gql(client, "{ me { id } }", headers=bearer(user["accessToken"]))
    assert error_code(me) == "UNAUTHENTICATED"
    refreshed = await gql(
        client,
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
        {"t": user["refreshToken"]},
    )
    assert error_code(refreshed) == "UNAUTHENTICATED"
    assert error_code(await login(client, email, PASSWORD)) == "UNAUTHENTICATED"
    mails = await mails_to(app, email, count=2)  # the sign-up's verification, and the reset
    assert sorted("reset" in mail["Subject"].lower() for mail in mails) == [False, True]
    log = (await gql(client, AUDIT, headers=admin))["data"]["auditLog"]["edges"]
    assert log[0]["node"]["action"] == "user.force_password_reset"


# The whole admin surface, as the API guide lists it: every operation whose "who" is an admin.


def admin_operations() -> list[tuple[str, str]]:
    found = []
    for heading, root in (("Queries", "query"), ("Mutations", "mutation")):
        section = API_GUIDE.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
        for name, who in re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE):
            if who.strip() == "an admin":
                found.append((root, name))
    return found


def placeholder(kind: GraphQLInputType) -> Any:
    """A value of the type that passes validation (what it names need not exist)."""
    if isinstance(kind, GraphQLNonNull):
        return placeholder(kind.of_type)
    if isinstance(kind, GraphQLList):
        return [placeholder(kind.of_type)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        return {
            name: placeholder(field.type)
            for name, field in kind.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(kind, GraphQLScalarType)
    return {
        "ID": "VXNlcjox",
        "String": "x",
        "Int": 1,
        "Float": 1.0,
        "Boolean": True,
        "Date": "2027-01-01",
        "DateTime": "2027-01-01T00:00:00+00:00",
        "Decimal": "1.00",
    }.get(kind.name, "x")


def document(root: str, name: str) -> tuple[str, dict[str, Any]]:
    root_type = SCHEMA.query_type if root == "query" else SCHEMA.mutation_type
    assert root_type is not None
    field = root_type.fields[name]
    required = {arg: a for arg, a in field.args.items() if isinstance(a.type, GraphQLNonNull)}
    declared = ", ".join(f"${arg}: {a.type}" for arg, a in required.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in required)
    is_object = isinstance(get_named_type(field.type), GraphQLObjectType)
    selection = " { __typename }" if is_object else ""
    operation = f"{root}({declared})" if declared else root
    call = f"{name}({passed})" if passed else name
    variables = {arg: placeholder(a.type) for arg, a in required.items()}
    return f"{operation} {{ {call}{selection} }}", variables


def test_the_guide_gives_admins_their_operations() -> None:
    assert {name for _, name in admin_operations()} >= {
        "suspendUser",
        "reinstateUser",
        "grantRole",
        "removeRole",
        "forcePasswordReset",
        "hideReview",
        "auditLog",
        "users",
    }


@pytest.mark.parametrize(("root", "name"), admin_operations())
async def test_every_admin_operation_refuses_guests_and_hosts(
    client: httpx.AsyncClient, root: str, name: str
) -> None:
    place = await a_place(client)
    query, variables = document(root, name)
    for headers in (place.as_guest, place.as_host):
        body = await gql(client, query, variables, headers=headers)
        assert error_code(body) == "FORBIDDEN", (name, body)
    assert error_code(await gql(client, query, variables)) == "UNAUTHENTICATED"
