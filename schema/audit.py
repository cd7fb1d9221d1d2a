"""The audit log as admins read it (services/audit.py)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay
from strawberry.relay import to_base64
from strawberry.scalars import JSON

from auth import rules
from db.rows import AuditEntryRow
from resolvers.permissions import current_user
from schema.accounts import UserType
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from services import audit


@strawberry.type(
    name="AuditEntry",
    description="One change an admin made (or an operator, from the command line); admins "
    "only. Never edited.",
)
class AuditEntryType(relay.Node):
    entry_id: relay.NodeID[int]
    action: str = strawberry.field(description='What was done: "user.suspend", "review.hide"...')
    subject_type: str = strawberry.field(description="The kind of thing it was done to.")
    subject_id: strawberry.ID = strawberry.field(description="The global id of that thing.")
    before: JSON | None = strawberry.field(description="The fields it changed, as they were.")
    after: JSON | None = strawberry.field(description="The same fields, as they became.")
    reason: str | None = strawberry.field(description="Why, when the admin said.")
    created_at: datetime
    _row: strawberry.Private[AuditEntryRow]

    @strawberry.field(description="Who did it; null for an operator at the command line.")
    async def actor(self, info: Info) -> UserType | None:
        if self._row.actor_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(self._row.actor_id)
        return UserType.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: AuditEntryRow) -> Self:
        return cls(
            entry_id=row.id,
            action=row.action,
            subject_type=row.subject_type,
            subject_id=strawberry.ID(to_base64(row.subject_type, row.subject_id)),
            before=None if row.before is None else JSON(row.before),
            after=None if row.after is None else JSON(row.after),
            reason=row.reason,
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # hidden from non-admins, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [int(node_id) for node_id in node_ids]
        if not rules.is_admin(await current_user(info)):
            return [None for _ in ids]
        async with info.context.database.read_session() as session:
            found = await audit.entries_by_id(session, ids)
        return [cls.from_row(found[i]) if i in found else None for i in ids]


@strawberry.type(description="An audit entry in a list, with the cursor to continue after it.")
class AuditEntryEdge(Edge[AuditEntryType]):
    pass


@strawberry.type(description="A page of the audit log, newest first.")
class AuditEntryConnection(Connection[AuditEntryEdge]):
    total_count: int = total_count("How many entries the log holds, as filtered.")
