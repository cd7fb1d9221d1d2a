"""The root types and the Schema object."""

from collections.abc import Callable
from functools import partial

import strawberry
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit_rule
from strawberry.schema.config import StrawberryConfig

from resolvers.accounts import AccountMutations, AccountQueries
from resolvers.bookings import BookingMutations, BookingQueries
from resolvers.listings import ListingMutations, ListingQueries
from resolvers.node import resolve_node
from schema.authentication import RefuseUnauthenticated
from schema.bookings import BookingType, PaymentType
from schema.errors import ErrorConvention, log_unexpected_errors
from schema.execution import RoostExecutionContext
from schema.listings import ListingType
from schema.scalars import SCALAR_MAP
from schema.users import UserType


@strawberry.type(description="What can be read.")
class Query(AccountQueries, ListingQueries, BookingQueries):
    node: relay.Node | None = strawberry.field(
        resolver=resolve_node,
        description="Any object by its global id; null when it does not exist or is hidden.",
    )


@strawberry.type(description="What can be changed.")
class Mutation(AccountMutations, ListingMutations, BookingMutations):
    pass


class RoostSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # noqa: ANN001
        operation = execution_context.operation_name if execution_context else None
        log_unexpected_errors(errors, operation)


def build_schema(
    *,
    production: bool = False,
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 4_000,
) -> strawberry.Schema:
    # The limit rules are made once: the validation cache is keyed by the rule classes, and a
    # class made per request would miss it every time.
    limits = [
        depth_limit_rule(max_depth, should_ignore=None),
        alias_limit_rule(max_aliases),
    ]
    # Factories, not instances: each request gets its own extension objects.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(ErrorConvention, hide_suggestions=production),
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(AddValidationRules, limits),
        partial(ParserCache, maxsize=512),
        partial(ValidationCache, maxsize=512),
        RefuseUnauthenticated,
    ]
    if production:
        extensions.append(DisableIntrospection)
    return RoostSchema(
        query=Query,
        mutation=Mutation,
        # The scalars are declared before any field uses them, so clients can rely on them.
        types=[UserType, ListingType, BookingType, PaymentType, *SCALAR_MAP.keys()],
        extensions=extensions,
        execution_context_class=RoostExecutionContext,
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALAR_MAP),
    )
