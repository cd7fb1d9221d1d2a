"""Wishlists: the signed-in user's lists and their saved places, and a shared list by its
token for anyone. The rules are services/wishlists.py's."""

from functools import partial
from typing import TypeVar

import strawberry
from strawberry import relay

from db.rows import WishlistRow
from resolvers.node import node_id
from resolvers.permissions import IsAuthenticated, can_see_listing, require_user
from schema.bookings import PriceQuote
from schema.context import Info
from schema.listings import ListingType
from schema.wishlists import (
    SavedPlaceConnection,
    SavedPlaceEdge,
    SavedPlaceType,
    SharedWishlistType,
    UpdateWishlistInput,
    WishlistConnection,
    WishlistEdge,
    WishlistShare,
    WishlistType,
)
from services import wishlists as wishlists_service
from services.errors import InvalidInput, NotFound

T = TypeVar("T")


def _given(value: T | None) -> T | None:
    """None for a field left out (UNSET) as for one given as null."""
    return None if value is strawberry.UNSET else value


def _wishlist_id(value: strawberry.ID, field: str = "id") -> int:
    return node_id(value, "Wishlist", field)


async def wishlists(
    info: Info, first: int | None = 20, after: str | None = None
) -> WishlistConnection:
    user = await require_user(info)
    database = info.context.database
    async with database.read_session() as session:
        page = await wishlists_service.list_wishlists(
            session, user_id=user.id, first=20 if first is None else first, after=after
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(page.count_query) or 0

    return WishlistConnection.of(
        [
            WishlistEdge(cursor_value=cursor, node=WishlistType.from_row(row))
            for row, cursor in zip(page.wishlists, page.cursors, strict=True)
        ],
        has_next_page=page.has_next_page,
        count=count,
    )


async def wishlist(info: Info, id: strawberry.ID) -> WishlistType:
    user = await require_user(info)
    wishlist_id = _wishlist_id(id)
    async with info.context.database.read_session() as session:
        rows = await wishlists_service.of_user(session, user_id=user.id, ids=[wishlist_id])
    if wishlist_id not in rows:
        raise NotFound(wishlists_service.GONE)
    return WishlistType.from_row(rows[wishlist_id])


async def shared_wishlist(info: Info, token: str) -> SharedWishlistType:
    async with info.context.database.read_session() as session:
        found = await wishlists_service.shared(session, token=token)
    if found is None:
        raise NotFound(wishlists_service.GONE)
    return SharedWishlistType.of(*found)


async def saved_places_page(
    info: Info, wishlist: WishlistRow, *, first: int | None, after: str | None
) -> SavedPlaceConnection:
    """``items`` of a list, its owner's or a shared one: the viewer sees a listing only as
    they could anywhere else."""
    services = info.context.services
    booking_rules = await services.current_booking_rules()
    database = info.context.database
    page = await wishlists_service.saved_places(
        database,
        wishlist=wishlist,
        first=20 if first is None else first,
        after=after,
        fees=booking_rules.fees,
        now=services.clock(),
        max_days_ahead=booking_rules.max_days_ahead,
    )
    loaders = info.context.loaders
    edges = []
    for place, cursor in zip(page.places, page.cursors, strict=True):
        row = place.listing
        loaders.listing_by_id.prime(row.id, row)
        visible = await can_see_listing(info, row)
        edges.append(
            SavedPlaceEdge(
                cursor_value=cursor,
                node=SavedPlaceType(
                    listing_id=strawberry.ID(relay.to_base64("Listing", row.id)),
                    listing=ListingType.from_row(row) if visible else None,
                    saved_at=place.saved_at,
                    available=place.available,
                    quote=PriceQuote.of(place.price) if place.price is not None else None,
                ),
            )
        )

    async def count() -> int:
        async with database.read_session() as session:
            return await session.scalar(wishlists_service.count_items(wishlist.id)) or 0

    return SavedPlaceConnection.of(edges, has_next_page=page.has_next_page, count=count)


async def create_wishlist(info: Info, name: str) -> WishlistType:
    user = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            wishlists_service.create_wishlist,
            user_id=user.id,
            name=name,
            now=info.context.services.clock(),
        )
    )
    return WishlistType.from_row(row)


async def rename_wishlist(info: Info, id: strawberry.ID, name: str) -> WishlistType:
    user = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            wishlists_service.update_wishlist,
            user_id=user.id,
            wishlist_id=_wishlist_id(id),
            name=name,
        )
    )
    return WishlistType.from_row(row)


async def update_wishlist(
    info: Info, id: strawberry.ID, input: UpdateWishlistInput
) -> WishlistType:
    user = await require_user(info)
    if input.name is None:
        raise InvalidInput.field("name", "must not be null")
    name = None if input.name is strawberry.UNSET else input.name
    stay = None
    # Any of the three given sets the stay from them: one left out is none.
    if any(
        value is not strawberry.UNSET for value in (input.check_in, input.check_out, input.guests)
    ):
        stay = wishlists_service.StayChange(
            check_in=_given(input.check_in),
            check_out=_given(input.check_out),
            guests=_given(input.guests),
        )
    row = await info.context.database.transaction(
        partial(
            wishlists_service.update_wishlist,
            user_id=user.id,
            wishlist_id=_wishlist_id(id),
            name=name,
            stay=stay,
        )
    )
    return WishlistType.from_row(row)


async def delete_wishlist(info: Info, id: strawberry.ID) -> strawberry.ID:
    user = await require_user(info)
    await info.context.database.transaction(
        partial(wishlists_service.delete_wishlist, user_id=user.id, wishlist_id=_wishlist_id(id))
    )
    return id


async def add_to_wishlist(
    info: Info, wishlist_id: strawberry.ID, listing_id: strawberry.ID
) -> WishlistType:
    user = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            wishlists_service.add_to_wishlist,
            user=user,
            wishlist_id=_wishlist_id(wishlist_id, "wishlistId"),
            listing_id=node_id(listing_id, "Listing", "listingId"),
            now=info.context.services.clock(),
        )
    )
    info.context.loaders.saved_by_user.clear_all()
    return WishlistType.from_row(row)


async def remove_from_wishlist(
    info: Info, wishlist_id: strawberry.ID, listing_id: strawberry.ID
) -> WishlistType:
    user = await require_user(info)
    row = await info.context.database.transaction(
        partial(
            wishlists_service.remove_from_wishlist,
            user_id=user.id,
            wishlist_id=_wishlist_id(wishlist_id, "wishlistId"),
            listing_id=node_id(listing_id, "Listing", "listingId"),
        )
    )
    info.context.loaders.saved_by_user.clear_all()
    return WishlistType.from_row(row)


async def share_wishlist(info: Info, id: strawberry.ID) -> WishlistShare:
    user = await require_user(info)
    row, token = await info.context.database.transaction(
        partial(wishlists_service.share_wishlist, user_id=user.id, wishlist_id=_wishlist_id(id))
    )
    frontend = info.context.services.frontend_url.rstrip("/")
    return WishlistShare(
        wishlist=WishlistType.from_row(row),
        token=token,
        url=f"{frontend}/wishlists/shared/{token}",
    )


async def unshare_wishlist(info: Info, id: strawberry.ID) -> WishlistType:
    user = await require_user(info)
    row = await info.context.database.transaction(
        partial(wishlists_service.unshare_wishlist, user_id=user.id, wishlist_id=_wishlist_id(id))
    )
    return WishlistType.from_row(row)


@strawberry.type
class WishlistQueries:
    wishlists: WishlistConnection = strawberry.field(
        resolver=wishlists,
        permission_classes=[IsAuthenticated],
        description="The signed-in user's wishlists, newest first. first: 1 to 100.",
    )
    wishlist: WishlistType = strawberry.field(
        resolver=wishlist,
        permission_classes=[IsAuthenticated],
        description="One of the signed-in user's wishlists; NOT_FOUND for anyone else's.",
    )
    shared_wishlist: SharedWishlistType = strawberry.field(
        resolver=shared_wishlist,
        description="Anyone, signed in or not: the wishlist a shared link's token opens, "
        "read-only; NOT_FOUND once it is unshared or shared anew.",
    )


@strawberry.type
class WishlistMutations:
    create_wishlist: WishlistType = strawberry.mutation(
        resolver=create_wishlist,
        permission_classes=[IsAuthenticated],
        description="A new, private, empty wishlist. name: 1 to 100 characters, plain text. "
        "CONFLICT past 100 lists.",
    )
    rename_wishlist: WishlistType = strawberry.mutation(
        resolver=rename_wishlist,
        permission_classes=[IsAuthenticated],
        description="Renames one of the signed-in user's wishlists.",
    )
    update_wishlist: WishlistType = strawberry.mutation(
        resolver=update_wishlist,
        permission_classes=[IsAuthenticated],
        description="Renames a wishlist and/or sets the stay (dates, guests) its places are "
        "shown for; give checkIn, checkOut and guests together (both dates null clears them).",
    )
    delete_wishlist: strawberry.ID = strawberry.mutation(
        resolver=delete_wishlist,
        permission_classes=[IsAuthenticated],
        description="Deletes a wishlist and what it saved; answers its id.",
    )
    add_to_wishlist: WishlistType = strawberry.mutation(
        resolver=add_to_wishlist,
        permission_classes=[IsAuthenticated],
        description="Saves a place in a wishlist; a place already there leaves it as it is. "
        "CONFLICT past 1,000 saved places over all the user's lists.",
    )
    remove_from_wishlist: WishlistType = strawberry.mutation(
        resolver=remove_from_wishlist,
        permission_classes=[IsAuthenticated],
        description="Takes a place out of a wishlist; one not in it leaves it as it is.",
    )
    share_wishlist: WishlistShare = strawberry.mutation(
        resolver=share_wishlist,
        permission_classes=[IsAuthenticated],
        description="A read-only link to a wishlist for anyone holding it; any earlier link "
        "stops working.",
    )
    unshare_wishlist: WishlistType = strawberry.mutation(
        resolver=unshare_wishlist,
        permission_classes=[IsAuthenticated],
        description="Makes a wishlist private again: its link stops working.",
    )
