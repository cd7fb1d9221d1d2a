"""schema/arguments.py converts every argument of the schema it covers exactly as strawberry's
``convert_argument`` does: checked here on a value for every input field, nested inputs and
lists included, and on null and left-out values."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from strawberry.types.arguments import convert_argument
from strawberry.types.unset import UNSET

from schema.arguments import argument_converter
from schema.root import build_schema

SCHEMA = build_schema()
CONFIG = SCHEMA.config
REGISTRY = SCHEMA.schema_converter.scalar_registry
SAMPLES: dict[str, Any] = {
    "String": "text",
    "ID": "TGlzdGluZzox",
    "Int": 3,
    "Float": 1.5,
    "Boolean": True,
    "Date": date(2027, 3, 1),
    "DateTime": datetime(2027, 3, 1, 12, tzinfo=UTC),
    "Decimal": Decimal("12.50"),
}


def coerced_sample(type_: GraphQLInputType, depth: int = 0, *, every: bool = True) -> Any:
    """A value of ``type_`` as graphql-core hands it to a resolver: with every field of its
    input objects given, or (``every`` false) only the required ones."""
    if isinstance(type_, GraphQLNonNull):
        return coerced_sample(type_.of_type, depth, every=every)
    if isinstance(type_, GraphQLList):
        item = coerced_sample(type_.of_type, depth, every=every)
        return [item, item]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values.values())).value
    if isinstance(type_, GraphQLInputObjectType):
        if depth > 3:
            return None
        return {
            name: coerced_sample(f.type, depth + 1, every=every)
            for name, f in type_.fields.items()
            if every or isinstance(f.type, GraphQLNonNull)
        }
    assert isinstance(type_, GraphQLScalarType)
    return SAMPLES.get(type_.name, "text")


def every_argument() -> list[tuple[str, Any, GraphQLInputType]]:
    found = []
    for graphql_type in SCHEMA._schema.type_map.values():
        definition = graphql_type.extensions.get("strawberry-definition")
        fields = getattr(graphql_type, "fields", None)
        if definition is None or not fields or isinstance(graphql_type, GraphQLInputObjectType):
            continue
        for field_name, field in fields.items():
            strawberry_field = field.extensions.get("strawberry-definition")
            for argument in getattr(strawberry_field, "arguments", None) or ():
                name = CONFIG.name_converter.from_argument(argument)
                found.append(
                    (f"{graphql_type.name}.{field_name}({name})", argument, field.args[name].type)
                )
    return found


ARGUMENTS = every_argument()


def test_the_search_filter_is_covered() -> None:
    covered = {
        label
        for label, argument, _ in ARGUMENTS
        if argument_converter(argument.type, REGISTRY, CONFIG.name_converter.from_field)
    }
    assert "Query.searchListings(filter)" in covered
    assert len(covered) > len(ARGUMENTS) / 2


@pytest.mark.parametrize(("label", "argument", "graphql_type"), ARGUMENTS, ids=lambda a: a)
def test_each_argument_converts_as_strawberry_converts_it(
    label: str, argument: Any, graphql_type: GraphQLInputType
) -> None:
    convert = argument_converter(argument.type, REGISTRY, CONFIG.name_converter.from_field)
    if convert is None:
        pytest.skip("left to strawberry")
    for value in (
        coerced_sample(graphql_type),
        coerced_sample(graphql_type, every=False),
        None,
        UNSET,
    ):
        theirs = convert_argument(value, argument.type, REGISTRY, CONFIG)
        ours = convert(value)
        assert ours == theirs, label
        assert type(ours) is type(theirs), label
        if isinstance(theirs, list):
            assert ours is not value, "a list is copied, as graphql-core may share it"
