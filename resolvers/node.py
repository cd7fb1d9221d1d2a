"""``node(id:)`` and the handling of ids and inputs every resolver shares."""

import dataclasses
from enum import Enum
from typing import Any

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


def plain_input(value: Any) -> Any:
    """An input object as plain values for a service: nested dicts holding only the fields the
    client sent (left-out ones are UNSET), enums by their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain_input(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if getattr(value, field.name) is not strawberry.UNSET
        }
    if isinstance(value, list):
        return [plain_input(item) for item in value]
    return value.value if isinstance(value, Enum) else value


def forward_page_info(cursors: list[str], has_next_page: bool) -> relay.PageInfo:
    """Page info of a list read forwards only, as every Roost connection is."""
    return relay.PageInfo(
        has_next_page=has_next_page,
        has_previous_page=False,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
