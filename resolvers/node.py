"""``node(id:)``: any object by its global id, under the same permissions as elsewhere."""

import strawberry
from strawberry import relay

from schema.context import Info
from services.errors import InvalidInput

_MAX_BIGINT = 2**63 - 1


def parse_global_id(value: str, *, field: str = "id") -> relay.GlobalID:
    try:
        return relay.GlobalID.from_id(value)
    except relay.GlobalIDValueError:
        raise InvalidInput.field(field, "is not a valid id") from None


async def resolve_node(info: Info, id: strawberry.ID) -> relay.Node | None:  # noqa: A002
    global_id = parse_global_id(id)
    # Every Roost object is keyed by a bigint; anything else names nothing.
    if not global_id.node_id.isdecimal() or int(global_id.node_id) > _MAX_BIGINT:
        return None
    try:
        return await global_id.resolve_node(info, required=False)
    except relay.GlobalIDValueError:  # a type that is not a Node
        return None


def node_id(value: strawberry.ID, type_name: str, field: str) -> int:
    """The database id in a global id of ``type_name``; BAD_USER_INPUT on ``field`` otherwise."""
    global_id = parse_global_id(value, field=field)
    if global_id.type_name != type_name or not global_id.node_id.isdecimal():
        raise InvalidInput.field(field, f"is not the id of a {type_name}")
    number = int(global_id.node_id)
    if number > _MAX_BIGINT:
        raise InvalidInput.field(field, f"is not the id of a {type_name}")
    return number
