"""Strawberry's conversion of a field's arguments, worked out once per field.

graphql-core hands a resolver its arguments coerced into plain values; strawberry then turns
input objects into their classes (``ListingFilter``, ``NearInput``) by walking each argument's
type afresh on every call: resolving annotations, converting names, checking protocols. For a
search page that walk was 7% of its CPU. A converter here does the same for one argument type,
with every lookup made when the plan is compiled. Types it does not cover (``Maybe``, global
ids, input types that build themselves, lazy types) have none, and their fields keep
strawberry's own conversion.
"""

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.unset import UNSET

Convert = Callable[[Any], Any]


def _as_it_is(value: Any) -> Any:
    return value


def argument_converter(
    type_: Any, scalar_registry: Mapping[object, Any], name_of: Callable[[Any], str]
) -> Convert | None:
    """What converts a coerced value of ``type_`` as strawberry's ``convert_argument`` does,
    or None for a type this does not cover. ``name_of`` is the schema's GraphQL name of an
    input field."""
    convert = _converter(type_, scalar_registry, name_of)
    if convert is None:
        return None
    if convert is _as_it_is:
        return convert

    def converted(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        return convert(value)

    return converted


def _converter(
    type_: Any, scalar_registry: Mapping[object, Any], name_of: Callable[[Any], str]
) -> Convert | None:
    """As ``argument_converter``, for a value that is neither None nor UNSET."""
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type, scalar_registry, name_of)
    if isinstance(type_, StrawberryList):
        item = argument_converter(type_.of_type, scalar_registry, name_of)
        if item is None:
            return None
        if item is _as_it_is:
            # Copied, as strawberry copies it: graphql-core shares a default among requests.
            return list
        return lambda values: [item(value) for value in values]
    if _is_leaf(type_, scalar_registry):
        return _as_it_is
    if has_object_definition(type_):
        definition = type_.__strawberry_definition__
        if not definition.is_input or definition.from_input is not None:
            return None
        fields: list[tuple[str, str, Convert]] = []
        for field in definition.fields:
            convert = argument_converter(
                field.resolve_type(type_definition=definition), scalar_registry, name_of
            )
            if convert is None:
                return None
            fields.append((name_of(field), field.python_name, convert))
        # Fields without a default are None unless given, as strawberry makes them.
        absent = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }

        def make(value: Mapping[str, Any]) -> Any:
            kwargs: dict[str, Any] = dict(absent)
            for graphql_name, python_name, convert in fields:
                if graphql_name in value:
                    kwargs[python_name] = convert(value[graphql_name])
            return type_(**kwargs)

        return make
    return None


def _is_leaf(type_: Any, scalar_registry: Mapping[object, Any]) -> bool:
    if type_ is GlobalID:
        return False  # decoded by strawberry, with its own error
    return (
        is_scalar(type_, scalar_registry)
        or isinstance(type_, StrawberryEnumDefinition)
        or has_enum_definition(type_)
    )
