"""Admin operations in tests: the audit log's entries for a subject, and the notifications a
user has been given once the worker ran."""

import httpx
from starlette.applications import Starlette

from tests.helpers import gql
from tests.review_helpers import worker_of

AUDIT = """
query($action: String) {
  auditLog(first: 100, action: $action) {
    edges { node { action subjectType subjectId before after reason actor { id } } }
  }
}
"""
NOTIFICATIONS = """
{ notifications(first: 50) { edges { node { kind title body booking { id } } } } }
"""


async def audited(client: httpx.AsyncClient, admin: dict[str, str], action: str) -> list[dict]:
    """The audit log's entries of ``action``, newest first."""
    body = await gql(client, AUDIT, {"action": action}, headers=admin)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["auditLog"]["edges"]]


async def notified(
    app: Starlette, client: httpx.AsyncClient, headers: dict[str, str]
) -> list[dict]:
    """What the user has been told, newest first, once the worker handled the outbox."""
    await worker_of(app).run_once()
    body = await gql(client, NOTIFICATIONS, headers=headers)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["notifications"]["edges"]]
