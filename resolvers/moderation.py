"""Admins review listings: the queue of those waiting (or flagged), approve, flag."""

from functools import partial

import strawberry

from db.rows import ListingRow
from resolvers.listings import reloaded
from resolvers.node import node_id
from resolvers.permissions import IsAdmin, require_user
from schema.context import Info
from schema.listings import ListingConnection, ListingEdge, ListingModeration, ListingType
from services import moderation


async def moderation_queue(
    info: Info,
    state: ListingModeration | None = ListingModeration.PENDING_REVIEW,
    first: int | None = 20,
    after: str | None = None,
) -> ListingConnection:
    admin = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await moderation.moderation_queue(
            session,
            admin=admin,
            state=state or ListingModeration.PENDING_REVIEW,
            first=20 if first is None else first,
            after=after,
        )
        rows = [ListingRow.of(listing) for listing in page.listings]

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return ListingConnection.of(
        [
            ListingEdge(cursor_value=cursor, node=ListingType.from_row(row))
            for row, cursor in zip(rows, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def approve_listing(info: Info, id: strawberry.ID) -> ListingType:
    admin = await require_user(info)
    listing_id = node_id(id, "Listing", "id")
    await info.context.database.transaction(
        partial(
            moderation.approve,
            admin=admin,
            listing_id=listing_id,
            now=info.context.services.clock(),
        )
    )
    return await reloaded(info, listing_id)


async def flag_listing(info: Info, id: strawberry.ID, reason: str) -> ListingType:
    admin = await require_user(info)
    listing_id = node_id(id, "Listing", "id")
    await info.context.database.transaction(
        partial(
            moderation.flag,
            admin=admin,
            listing_id=listing_id,
            reason=reason,
            now=info.context.services.clock(),
        )
    )
    return await reloaded(info, listing_id)


@strawberry.type
class ModerationQueries:
    moderation_queue: ListingConnection = strawberry.field(
        resolver=moderation_queue,
        permission_classes=[IsAdmin],
        description="Admins: listings in a moderation state (PENDING_REVIEW unless asked), the "
        "longest waiting first; deleted ones left out. first: 1 to 100.",
    )


@strawberry.type
class ModerationMutations:
    approve_listing: ListingType = strawberry.mutation(
        resolver=approve_listing,
        permission_classes=[IsAdmin],
        description="Admins: approves a listing waiting for review or flagged; once published it "
        "is in search and bookable at once. Its host is told; audited as listing.approve. "
        "CONFLICT when it is approved already.",
    )
    flag_listing: ListingType = strawberry.mutation(
        resolver=flag_listing,
        permission_classes=[IsAdmin],
        description="Admins: flags a listing with a reason (1 to 500 characters of plain text): "
        "out of search and unbookable at once, its host told why; audited as listing.flag.",
    )
