"""Relay connections: one generic edge and page for every kind of node.

Each kind names and describes its own pair, which keeps the SDL's types as they were:

    @strawberry.type(description="A listing in a list, with the cursor to continue after it.")
    class ListingEdge(Edge[ListingType]):
        pass


    @strawberry.type(description="A page of listings.")
    class ListingConnection(Connection[ListingEdge]):
        total_count: int = total_count("How many listings match in all.")
"""

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

import strawberry
from strawberry import relay

from resolvers.node import forward_page_info

NodeT = TypeVar("NodeT")
EdgeT = TypeVar("EdgeT", bound="Edge[Any]")
Counter = Callable[[], Awaitable[int]]
"""Counts every match of the list; awaited only when a client asks for ``totalCount``."""


def _edge_cursor(root: "Edge[Any]") -> str:
    return cursor_text(root.cursor_value)


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: NodeT
    # The cursor, or what packs it when first asked for: a page shows few of its cursors.
    cursor_value: strawberry.Private[str | Callable[[], str]]


def cursor_text(cursor: str | Callable[[], str]) -> str:
    return cursor if isinstance(cursor, str) else cursor()


@strawberry.type
class Connection(Generic[EdgeT]):
    edges: list[EdgeT]
    page_info: relay.PageInfo
    _count: strawberry.Private[Counter]

    @classmethod
    def of(cls, edges: list[EdgeT], *, has_next_page: bool, count: Counter) -> Self:
        """A page read forwards, as every Roost list is."""
        page_info = forward_page_info(
            cursor_text(edges[0].cursor_value) if edges else None,
            cursor_text(edges[-1].cursor_value) if edges else None,
            has_next_page,
        )
        return cls(edges=edges, page_info=page_info, _count=count)


def total_count(description: str) -> Any:
    """The ``totalCount`` field of a connection, described for its kind of node."""

    async def resolve(root: Connection[Any]) -> int:
        return await root._count()

    return strawberry.field(resolver=resolve, description=description)
