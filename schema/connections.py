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


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[EdgeT]):
    edges: list[EdgeT]
    page_info: relay.PageInfo
    _count: strawberry.Private[Counter]

    @classmethod
    def of(cls, edges: list[EdgeT], *, has_next_page: bool, count: Counter) -> Self:
        """A page read forwards, as every Roost list is."""
        cursors = [edge.cursor for edge in edges]
        return cls(edges=edges, page_info=forward_page_info(cursors, has_next_page), _count=count)


def total_count(description: str) -> Any:
    """The ``totalCount`` field of a connection, described for its kind of node."""

    async def resolve(root: Connection[Any]) -> int:
        return await root._count()

    return strawberry.field(resolver=resolve, description=description)
