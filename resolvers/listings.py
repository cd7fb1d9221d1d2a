"""Listings: publish, change, delete, calendars, and search."""

from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from auth import rules
from db.rows import ListingRow
from resolvers.currency import viewer_currency
from resolvers.node import node_id, plain_input
from resolvers.permissions import (
    IsAdmin,
    IsAuthenticated,
    IsHost,
    can_see_listing,
    current_user,
    require_user,
)
from schema.calendar_sync import CalendarImportType
from schema.connections import Counter
from schema.context import Info
from schema.listings import (
    AmenityType,
    CalendarNight,
    CreateListingInput,
    ListingConnection,
    ListingEdge,
    ListingFilter,
    ListingSort,
    ListingType,
    MoneyType,
    UpdateListingInput,
    amenity_type,
    listing_columns,
)
from services import calendar_imports as calendar_imports_service
from services import calendar_sync
from services import listings as listings_service
from services import search as search_service


def _listing_fields(input_object: CreateListingInput | UpdateListingInput) -> dict[str, Any]:
    fields: dict[str, Any] = plain_input(input_object)
    if fields.get("photos") is not None:
        photos = fields.pop("photos")
        fields["photo_upload_ids"] = [photo["upload_id"] for photo in photos]
        fields["photo_captions"] = [photo.get("caption") for photo in photos]
    else:
        fields.pop("photos", None)
    if fields.get("photo_upload_ids") is not None:
        fields["photo_upload_ids"] = [
            node_id(upload_id, "Upload", "photoUploadIds")
            for upload_id in fields["photo_upload_ids"]
        ]
    return fields


async def listing(info: Info, id: strawberry.ID) -> ListingType | None:
    row = await info.context.loaders.listing_by_id.load(node_id(id, "Listing", "id"))
    return (
        ListingType.from_row(row) if row is not None and await can_see_listing(info, row) else None
    )


async def amenities(info: Info) -> list[AmenityType]:
    catalogue = await info.context.services.amenities.by_id()
    return [amenity_type(entry) for entry in catalogue.values()]


def _page(page: search_service.SearchPage, count: Counter) -> ListingConnection:
    return ListingConnection.of(
        [
            ListingEdge(
                cursor_value=page.cursors.packer(index),
                node=ListingType.from_row(
                    row,
                    page.hosts[index] if page.hosts is not None else None,
                    page.photos[index] if page.photos is not None else None,
                ),
            )
            for index, row in enumerate(page.rows)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def search_listings(
    info: Info,
    filter: ListingFilter | None = strawberry.UNSET,
    sort: ListingSort | None = ListingSort.RELEVANCE,
    first: int | None = 20,
    after: str | None = strawberry.UNSET,
) -> ListingConnection:
    given = filter or ListingFilter()
    sort = sort or ListingSort.RELEVANCE
    first = 20 if first is None else first
    near = given.near
    selected, shown = _selected(info)
    search = search_service.SearchFilter(
        location=given.location,
        near=search_service.Near(near.latitude, near.longitude, near.radius_km) if near else None,
        check_in=given.check_in,
        check_out=given.check_out,
        guests=given.guests,
        min_price=given.min_price,
        max_price=given.max_price,
        currency=(given.currency or await viewer_currency(info)).upper(),
        amenities=given.amenities or (),
        property_types=[kind.value for kind in given.property_types or ()],
        instant_book=given.instant_book,
    )
    page = await search_service.search_listings(
        info.context.database,
        search,
        sort=search_service.Sort(sort.value),
        first=first,
        after=after or None,
        amenity_ids=await info.context.services.amenities.ids_by_code(),
        with_total=bool({node.name.value for node in selected} & _COUNT_FIELDS),
        columns=listing_columns(shown),
        with_hosts="host" in shown,
        with_photos="photos" in shown,
    )

    async def count() -> int:
        return page.total_count or 0

    connection = _page(page, count)
    connection.total_count_is_exact = page.total_count_is_exact
    return connection


_COUNT_FIELDS = frozenset({"totalCount", "totalCountIsExact"})


def _selected(info: Info) -> tuple[list[FieldNode], set[str]]:
    """The fields selected on the page, and the names of those selected on its listings
    (``edges { node { ... } }``), inside fragments too; @skip and @include are not read, so
    a field they leave out is counted in.

    Read from graphql-core's nodes of the field: strawberry's ``selected_fields`` converts the
    whole selection (some thirty nodes on a search page) to its own objects."""
    raw = info._raw_info
    page = _fields_of(raw.field_nodes, raw.fragments)
    fields = page
    for name in ("edges", "node"):
        fields = _fields_of([node for node in fields if node.name.value == name], raw.fragments)
    return page, {node.name.value for node in fields}


def _fields_of(
    nodes: Iterable[FieldNode], fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The fields selected on ``nodes``, with those of their fragments."""
    pending: list[SelectionSetNode] = [
        node.selection_set for node in nodes if node.selection_set is not None
    ]
    fields: list[FieldNode] = []
    seen: set[str] = set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                fields.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and (fragment := fragments.get(name)) is not None:
                    seen.add(name)
                    pending.append(fragment.selection_set)
    return fields


async def my_listings(
    info: Info, first: int | None = 20, after: str | None = strawberry.UNSET
) -> ListingConnection:
    user = await require_user(info)
    first = 20 if first is None else first
    database = info.context.database
    page = await search_service.listings_of_host(
        database, host_id=user.id, first=first, after=after or None
    )

    async def count() -> int:
        return await search_service.count_listings_of_host(database, host_id=user.id)

    return _page(page, count)


async def calendar(
    info: Info, listing: ListingRow, *, start: date, end: date
) -> list[CalendarNight]:
    """``Listing.calendar``: each night of [start, end), whether it can be booked, its price."""
    async with info.context.database.read_session() as session:
        nights = await listings_service.calendar(session, listing=listing, start=start, end=end)
    return [
        CalendarNight(date=night, available=available, price=MoneyType.of(price, listing.currency))
        for night, available, price in nights
    ]


async def calendar_export_url(info: Info, listing: ListingRow) -> str | None:
    """``Listing.calendarExportUrl``: its host's and admins' to see, null for everyone else."""
    if not rules.can_change_listing(await current_user(info), host_id=listing.host_id):
        return None
    token = await info.context.database.transaction(
        partial(calendar_sync.export_token, listing_id=listing.id)
    )
    return calendar_sync.feed_url(info.context.services.public_url, token)


async def rotate_calendar_export_url(info: Info, listing_id: strawberry.ID) -> str:
    actor = await require_user(info)
    token = await info.context.database.transaction(
        partial(
            calendar_sync.rotate_export_token,
            actor=actor,
            listing_id=node_id(listing_id, "Listing", "listingId"),
            now=info.context.services.clock(),
        )
    )
    return calendar_sync.feed_url(info.context.services.public_url, token)


async def calendar_imports(info: Info, listing: ListingRow) -> list[CalendarImportType] | None:
    """``Listing.calendarImports``: its host's and admins' to see, null for everyone else."""
    if not rules.can_change_listing(await current_user(info), host_id=listing.host_id):
        return None
    async with info.context.database.read_session() as session:
        rows = await calendar_imports_service.imports_of(session, listing_id=listing.id)
    return [CalendarImportType.from_model(row) for row in rows]


async def add_calendar_import(
    info: Info, listing_id: strawberry.ID, url: str, name: str
) -> CalendarImportType:
    actor = await require_user(info)
    services = info.context.services
    url, name = calendar_imports_service.checked_input(url, name)
    await calendar_imports_service.check_address(services.calendar_feeds, url)
    row = await info.context.database.transaction(
        partial(
            calendar_imports_service.add_import,
            actor=actor,
            listing_id=node_id(listing_id, "Listing", "listingId"),
            url=url,
            name=name,
            now=services.clock(),
        )
    )
    return CalendarImportType.from_model(row)


async def remove_calendar_import(info: Info, id: strawberry.ID) -> bool:
    actor = await require_user(info)
    await info.context.database.transaction(
        partial(
            calendar_imports_service.remove_import,
            actor=actor,
            import_id=node_id(id, "CalendarImport", "id"),
            now=info.context.services.clock(),
        )
    )
    return True


async def reloaded(info: Info, listing_id: int) -> ListingType:
    """The listing as a change just committed left it."""
    info.context.loaders.listing_by_id.clear(listing_id)
    info.context.loaders.photos_by_listing.clear(listing_id)
    return ListingType.from_row(await info.context.loaders.listing_by_id.load_existing(listing_id))


async def create_listing(info: Info, input: CreateListingInput) -> ListingType:
    host = await require_user(info)
    services = info.context.services
    created = await info.context.database.transaction(
        partial(
            listings_service.create_listing,
            host=host,
            fields=_listing_fields(input),
            moderation_on=(await services.current_settings()).moderation_enabled,
            now=services.clock(),
        )
    )
    return await reloaded(info, created.id)


async def update_listing(
    info: Info,
    id: strawberry.ID,
    input: UpdateListingInput,
) -> ListingType:
    actor = await require_user(info)
    listing_id = node_id(id, "Listing", "id")
    services = info.context.services
    await info.context.database.transaction(
        partial(
            listings_service.update_listing,
            actor=actor,
            listing_id=listing_id,
            fields=_listing_fields(input),
            moderation_on=(await services.current_settings()).moderation_enabled,
            now=services.clock(),
        )
    )
    return await reloaded(info, listing_id)


async def delete_listing(info: Info, id: strawberry.ID) -> bool:
    actor = await require_user(info)
    await info.context.database.transaction(
        partial(
            listings_service.delete_listing, actor=actor, listing_id=node_id(id, "Listing", "id")
        )
    )
    return True


async def suspend_listing(info: Info, id: strawberry.ID, reason: str) -> ListingType:
    admin = await require_user(info)
    listing_id = node_id(id, "Listing", "id")
    await info.context.database.transaction(
        partial(
            listings_service.suspend,
            admin=admin,
            listing_id=listing_id,
            reason=reason,
            now=info.context.services.clock(),
        )
    )
    return await reloaded(info, listing_id)


async def restore_listing(info: Info, id: strawberry.ID) -> ListingType:
    admin = await require_user(info)
    listing_id = node_id(id, "Listing", "id")
    await info.context.database.transaction(
        partial(
            listings_service.restore,
            admin=admin,
            listing_id=listing_id,
            now=info.context.services.clock(),
        )
    )
    return await reloaded(info, listing_id)


From = Annotated[date, strawberry.argument(name="from", description="The first night.")]
To = Annotated[date, strawberry.argument(description="The day after the last night.")]


async def _change_calendar(
    info: Info, listing_id: strawberry.ID, change: Callable[..., Awaitable[None]], **values: Any
) -> bool:
    actor = await require_user(info)
    await info.context.database.transaction(
        partial(
            change, actor=actor, listing_id=node_id(listing_id, "Listing", "listingId"), **values
        )
    )
    return True


async def block_dates(info: Info, listing_id: strawberry.ID, from_: From, to: To) -> bool:
    return await _change_calendar(
        info, listing_id, listings_service.block_nights, start=from_, end=to
    )


async def unblock_dates(info: Info, listing_id: strawberry.ID, from_: From, to: To) -> bool:
    return await _change_calendar(
        info, listing_id, listings_service.unblock_nights, start=from_, end=to
    )


async def set_night_prices(
    info: Info, listing_id: strawberry.ID, from_: From, to: To, amount: Decimal | None
) -> bool:
    return await _change_calendar(
        info, listing_id, listings_service.set_night_prices, start=from_, end=to, amount=amount
    )


@strawberry.type
class ListingQueries:
    listing: ListingType | None = strawberry.field(
        resolver=listing,
        description="A listing; null when it does not exist or the viewer may not see it.",
    )
    search_listings: ListingConnection = strawberry.field(
        resolver=search_listings,
        description="Published listings that match, a page at a time (first: 1 to 100).",
    )
    my_listings: ListingConnection = strawberry.field(
        resolver=my_listings,
        permission_classes=[IsAuthenticated],
        description="The signed-in host's listings, drafts included, newest first.",
    )
    amenities: list[AmenityType] = strawberry.field(
        resolver=amenities, description="Every amenity a listing can have."
    )


@strawberry.type
class ListingMutations:
    suspend_listing: ListingType = strawberry.mutation(
        resolver=suspend_listing,
        permission_classes=[IsAdmin],
        description="Takes a listing out of search and booking at once, with a reason (admins "
        "only; audited); its host cannot republish it.",
    )
    restore_listing: ListingType = strawberry.mutation(
        resolver=restore_listing,
        permission_classes=[IsAdmin],
        description="Publishes a suspended listing again (admins only; audited).",
    )
    create_listing: ListingType = strawberry.mutation(
        resolver=create_listing, permission_classes=[IsHost], description="Hosts: a new listing."
    )
    update_listing: ListingType = strawberry.mutation(
        resolver=update_listing,
        permission_classes=[IsAuthenticated],
        description="Its host or an admin: changes a listing; publish: false unlists it.",
    )
    delete_listing: bool = strawberry.mutation(
        resolver=delete_listing,
        permission_classes=[IsAuthenticated],
        description="Its host or an admin: hides a listing everywhere; its bookings stay.",
    )
    block_dates: bool = strawberry.mutation(
        resolver=block_dates,
        permission_classes=[IsAuthenticated],
        description="Closes the nights [from, to); refused over booked nights.",
    )
    unblock_dates: bool = strawberry.mutation(
        resolver=unblock_dates,
        permission_classes=[IsAuthenticated],
        description="Opens the nights [from, to) the host closed; a night an imported calendar "
        "still shows stays closed by it.",
    )
    rotate_calendar_export_url: str = strawberry.mutation(
        resolver=rotate_calendar_export_url,
        permission_classes=[IsAuthenticated],
        description="Its host or an admin: a new secret calendar feed URL for the listing; the "
        "old one stops working at once. Answers the new URL.",
    )
    add_calendar_import: CalendarImportType = strawberry.mutation(
        resolver=add_calendar_import,
        permission_classes=[IsAuthenticated],
        description="Its host or an admin: imports another site's iCalendar feed (an http or "
        "https URL; at most 5 a listing; name: 1 to 100 characters). It is fetched at once and "
        "then every 30 minutes or so; the nights it shows close, save those booked on Roost.",
    )
    remove_calendar_import: bool = strawberry.mutation(
        resolver=remove_calendar_import,
        permission_classes=[IsAuthenticated],
        description="Its listing's host or an admin: stops importing the calendar; the nights "
        "only it closed open again.",
    )
    set_night_prices: bool = strawberry.mutation(
        resolver=set_night_prices,
        permission_classes=[IsAuthenticated],
        description="Prices the nights [from, to) at `amount`; null restores the nightly price.",
    )
