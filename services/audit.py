"""The audit log: every change an admin makes is recorded with who, what, when, and the
subject before and after, in the change's own transaction, so the log holds exactly what
happened. Nobody edits it (a trigger refuses, migration 0028); admins read it newest first.

An action is named ``<subject>.<verb>`` ("user.suspend", "review.hide"); ``before`` and
``after`` hold only the fields the action changes, as JSON. An operator's change from the
command line has no actor.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEntry
from db.rows import AuditEntryRow
from services import cursors
from services.errors import InvalidInput

MAX_PAGE_SIZE = 100
MAX_ACTION_FILTER = 100


async def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    subject: tuple[str, int],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
    reason: str | None = None,
) -> None:
    subject_type, subject_id = subject
    await session.execute(
        insert(AuditEntry).values(
            actor_id=actor_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            before=before,
            after=after,
            reason=reason,
            created_at=now,
        )
    )


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntryRow]
    cursors: list[str]
    has_next_page: bool
    count_query: Select[int]


_COLUMNS = tuple(getattr(AuditEntry, name) for name in AuditEntryRow._fields)


async def list_entries(
    session: AsyncSession,
    *,
    first: int = 20,
    after: str | None = None,
    action: str | None = None,
    actor_id: int | None = None,
    subject: tuple[str, int] | None = None,
) -> AuditPage:
    """A page of the log, newest first, narrowed to an action, an actor or a subject."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 1 and {MAX_PAGE_SIZE}")
    conditions = []
    if action is not None:
        if not 1 <= len(action) <= MAX_ACTION_FILTER:
            raise InvalidInput.field("action", f"must be 1 to {MAX_ACTION_FILTER} characters")
        conditions.append(AuditEntry.action == action)
    if actor_id is not None:
        conditions.append(AuditEntry.actor_id == actor_id)
    if subject is not None:
        conditions += [AuditEntry.subject_type == subject[0], AuditEntry.subject_id == subject[1]]
    query = select(*_COLUMNS).where(*conditions)
    key = (AuditEntry.created_at, AuditEntry.id)
    if after:
        query = query.where(tuple_(*key) < cursors.unpack_moment(after))
    rows = (await session.execute(query.order_by(*(c.desc() for c in key)).limit(first + 1))).all()
    page = [AuditEntryRow._make(row) for row in rows[:first]]
    return AuditPage(
        page,
        [cursors.pack_moment(row.created_at, row.id) for row in page],
        len(rows) > first,
        select(func.count()).select_from(AuditEntry).where(*conditions),
    )


async def entries_by_id(session: AsyncSession, ids: list[int]) -> dict[int, AuditEntryRow]:
    rows = await session.execute(select(*_COLUMNS).where(AuditEntry.id.in_(ids)))
    return {row.id: row for row in map(AuditEntryRow._make, rows)}
