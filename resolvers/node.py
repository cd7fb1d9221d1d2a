"""``node(id:)`` and the handling of ids and inputs every resolver shares."""

import dataclasses
import re
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types.base import StrawberryObjectDefinition

from schema.context import Info
from services.errors import InvalidInput

_MAX_BIGINT = 2**63 - 1
_DATABASE_ID = re.compile(r"[1-9][0-9]{0,18}")


def parse_global_id(value: str, *, field: str = "id") -> relay.GlobalID:
    try:
        return relay.GlobalID.from_id(value)
    except relay.GlobalIDValueError:
        raise InvalidInput.field(field, "is not a valid id") from None


def _database_id(global_id: relay.GlobalID) -> int | None:
    """The bigint a Roost id carries; None when it carries anything else."""
    if _DATABASE_ID.fullmatch(global_id.node_id) is None:
        return None
    number = int(global_id.node_id)
    return number if number <= _MAX_BIGINT else None


def _is_node_type(info: Info, type_name: str) -> bool:
    definition = info.schema.get_type_by_name(type_name)
    return (
        isinstance(definition, StrawberryObjectDefinition)
        and not definition.is_interface
        and issubclass(definition.origin, relay.Node)
    )


async def resolve_node(info: Info, id: strawberry.ID) -> relay.Node | None:
    global_id = parse_global_id(id)
    if not _is_node_type(info, global_id.type_name) or _database_id(global_id) is None:
        raise InvalidInput.field("id", "is not the id of anything Roost has")
    return await global_id.resolve_node(info, required=False)


def node_id(value: strawberry.ID, type_name: str, field: str) -> int:
    """The database id in a global id of ``type_name``; BAD_USER_INPUT on ``field`` otherwise."""
    global_id = parse_global_id(value, field=field)
    number = _database_id(global_id)
    if global_id.type_name != type_name or number is None:
        article = "an" if type_name[0] in "AEIOU" else "a"
        raise InvalidInput.field(field, f"is not the id of {article} {type_name}")
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


def forward_page_info(
    start_cursor: str | None, end_cursor: str | None, has_next_page: bool
) -> relay.PageInfo:
    """Page info of a list read forwards only, as every Roost connection is."""
    return relay.PageInfo(
        has_next_page=has_next_page,
        has_previous_page=False,
        start_cursor=start_cursor,
        end_cursor=end_cursor,
    )
