"""Wishlists: a signed-in user's named lists of saved places, and what a shared link shows."""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Self

import strawberry
from strawberry import relay

from db.rows import WishlistRow
from resolvers.permissions import current_user
from schema.bookings import PriceQuote
from schema.connections import Connection, Edge, total_count
from schema.context import Info
from schema.listings import ListingType
from services import wishlists as wishlists_service


@strawberry.type(
    name="SavedPlace",
    description="A place saved in a wishlist; with the list's dates, whether it can be booked "
    "for them and what the stay would cost.",
)
class SavedPlaceType:
    listing_id: strawberry.ID = strawberry.field(description="The listing's id, always given.")
    listing: ListingType | None = strawberry.field(
        description="The listing; null once it is deleted, unlisted, suspended, flagged or "
        "waiting for review (and the viewer is not its host)."
    )
    saved_at: datetime
    available: bool = strawberry.field(
        description="Bookable now and, when the list has dates, free for them and allowing "
        "their nights and guests. False for a place no longer open to guests."
    )
    quote: PriceQuote | None = strawberry.field(
        description="The price of the list's stay here; null without dates or when unavailable."
    )


@strawberry.type(description="A saved place in a list, with the cursor to continue after it.")
class SavedPlaceEdge(Edge[SavedPlaceType]):
    pass


@strawberry.type(description="A page of a wishlist's saved places, the latest saved first.")
class SavedPlaceConnection(Connection[SavedPlaceEdge]):
    total_count: int = total_count("How many places the list holds in all.")


@strawberry.type(
    name="Wishlist",
    description="A named list of saved places; only its owner sees it (others by a shared "
    "link only, as a SharedWishlist).",
)
class WishlistType(relay.Node):
    wishlist_id: relay.NodeID[int]
    name: str = strawberry.field(description="1 to 100 characters, plain text.")
    check_in: date | None = strawberry.field(description="The stay its places are shown for.")
    check_out: date | None
    guests: int | None
    shared: bool = strawberry.field(description="Whether a link (shareWishlist) opens it.")
    created_at: datetime
    _row: strawberry.Private[WishlistRow]

    @strawberry.field(description="Its saved places, the latest saved first. first: 1 to 100.")
    async def items(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> SavedPlaceConnection:
        from resolvers.wishlists import saved_places_page

        return await saved_places_page(info, self._row, first=first, after=after)

    @classmethod
    def from_row(cls, row: WishlistRow) -> Self:
        return cls(
            wishlist_id=row.id,
            name=row.name,
            check_in=row.check_in,
            check_out=row.check_out,
            guests=row.guests,
            shared=row.shared,
            created_at=row.created_at,
            _row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # another's node is None, even if required
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        ids = [int(node_id) for node_id in node_ids]
        viewer = await current_user(info)
        if viewer is None:
            return [None for _ in ids]
        async with info.context.database.read_session() as session:
            rows = await wishlists_service.of_user(session, user_id=viewer.id, ids=ids)
        return [cls.from_row(rows[i]) if i in rows else None for i in ids]


@strawberry.type(
    name="SharedWishlist",
    description="A wishlist as its shared link shows it to anyone: its name, dates and places, "
    "and its owner's first name; nothing else of the owner.",
)
class SharedWishlistType:
    name: str
    check_in: date | None
    check_out: date | None
    guests: int | None
    owner_first_name: str
    _row: strawberry.Private[WishlistRow]

    @strawberry.field(description="Its saved places, the latest saved first. first: 1 to 100.")
    async def items(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> SavedPlaceConnection:
        from resolvers.wishlists import saved_places_page

        return await saved_places_page(info, self._row, first=first, after=after)

    @classmethod
    def of(cls, row: WishlistRow, owner_first_name: str) -> Self:
        return cls(
            name=row.name,
            check_in=row.check_in,
            check_out=row.check_out,
            guests=row.guests,
            owner_first_name=owner_first_name,
            _row=row,
        )


@strawberry.type(description="A wishlist in a list, with the cursor to continue after it.")
class WishlistEdge(Edge[WishlistType]):
    pass


@strawberry.type(description="A page of the signed-in user's wishlists, newest first.")
class WishlistConnection(Connection[WishlistEdge]):
    total_count: int = total_count("How many wishlists the user keeps.")


@strawberry.type(description="A wishlist's read-only link, just made.")
class WishlistShare:
    wishlist: WishlistType
    token: str = strawberry.field(
        description="For sharedWishlist(token); shown once (only a hash is kept). Sharing "
        "again makes a new one and the old one stops working."
    )
    url: str = strawberry.field(description="The frontend's page for the token.")


@strawberry.input(description="Changes to a wishlist; fields left out stay as they are.")
class UpdateWishlistInput:
    name: str | None = strawberry.UNSET
    check_in: date | None = strawberry.field(
        default=strawberry.UNSET,
        description="With checkOut (both null clears the stay, and guests with it).",
    )
    check_out: date | None = strawberry.UNSET
    guests: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 50; with dates only."
    )
