"""The audit log, for admins."""

import strawberry

from resolvers.node import node_id, parse_global_id
from resolvers.permissions import IsAdmin
from schema.audit import AuditEntryConnection, AuditEntryEdge, AuditEntryType
from schema.context import Info
from services import audit


async def audit_log(
    info: Info,
    first: int | None = 20,
    after: str | None = None,
    action: str | None = None,
    actor_id: strawberry.ID | None = None,
    subject_id: strawberry.ID | None = None,
) -> AuditEntryConnection:
    actor = node_id(actor_id, "User", "actorId") if actor_id is not None else None
    subject = None
    if subject_id is not None:
        global_id = parse_global_id(subject_id, field="subjectId")
        subject = (global_id.type_name, node_id(subject_id, global_id.type_name, "subjectId"))
    database = info.context.database
    async with database.read_session() as session:
        page = await audit.list_entries(
            session,
            first=20 if first is None else first,
            after=after,
            action=action,
            actor_id=actor,
            subject=subject,
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return AuditEntryConnection.of(
        [
            AuditEntryEdge(cursor_value=cursor, node=AuditEntryType.from_row(row))
            for row, cursor in zip(page.entries, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


@strawberry.type
class AuditQueries:
    audit_log: AuditEntryConnection = strawberry.field(
        resolver=audit_log,
        permission_classes=[IsAdmin],
        description="What admins changed, newest first (admins only); narrowed to an action, "
        "an actor or a subject by its id. first: 1 to 100.",
    )
