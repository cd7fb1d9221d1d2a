"""The root types and the Schema object."""

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
)
from strawberry import relay
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers.accounts import AccountMutations, AccountQueries
from resolvers.admin_users import AdminUserMutations, AdminUserQueries
from resolvers.analytics import AnalyticsQueries
from resolvers.audit import AuditQueries
from resolvers.bookings import BookingMutations, BookingQueries
from resolvers.disputes import DisputeMutations, DisputeQueries
from resolvers.listings import ListingMutations, ListingQueries
from resolvers.messages import MessageMutations, MessageQueries
from resolvers.moderation import ModerationMutations, ModerationQueries
from resolvers.node import resolve_node
from resolvers.notifications import NotificationMutations, NotificationQueries
from resolvers.payments import PaymentMutations, PaymentQueries
from resolvers.payouts import PayoutMutations, PayoutQueries
from resolvers.platform_metrics import PlatformMetricsQueries
from resolvers.platform_settings import PlatformSettingsMutations, PlatformSettingsQueries
from resolvers.reviews import ReviewMutations
from resolvers.subscriptions import Subscription
from resolvers.wishlists import WishlistMutations, WishlistQueries
from schema import compiled
from schema.accounts import UserType
from schema.audit import AuditEntryType
from schema.authentication import RefuseUnauthenticated
from schema.bookings import BookingType
from schema.disputes import DisputeType
from schema.documents import DocumentChecks, Documents
from schema.errors import ErrorConvention, log_unexpected_errors
from schema.execution import RoostExecutionContext
from schema.limits import DocumentLimits
from schema.listings import ListingType
from schema.message_threads import MessageThreadType
from schema.messages import MessageType
from schema.notifications import NotificationType
from schema.payments import PaymentType
from schema.payouts import PayoutType
from schema.reviews import ReviewType
from schema.scalars import SCALAR_MAP
from schema.wishlists import WishlistType


@strawberry.type(description="What can be read.")
class Query(
    AccountQueries,
    ListingQueries,
    BookingQueries,
    PaymentQueries,
    PayoutQueries,
    MessageQueries,
    NotificationQueries,
    AuditQueries,
    DisputeQueries,
    AdminUserQueries,
    AnalyticsQueries,
    PlatformMetricsQueries,
    PlatformSettingsQueries,
    ModerationQueries,
    WishlistQueries,
):
    node: relay.Node | None = strawberry.field(
        resolver=resolve_node,
        description="Any object by its global id; null when it does not exist or is hidden.",
    )


@strawberry.type(description="What can be changed.")
class Mutation(
    AccountMutations,
    ListingMutations,
    BookingMutations,
    PaymentMutations,
    PayoutMutations,
    ReviewMutations,
    MessageMutations,
    NotificationMutations,
    DisputeMutations,
    AdminUserMutations,
    PlatformSettingsMutations,
    ModerationMutations,
    WishlistMutations,
):
    pass


class RoostSchema(strawberry.Schema):
    documents: Documents

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        operation = execution_context.operation_name if execution_context else None
        log_unexpected_errors(errors, operation)


def build_schema(
    *,
    production: bool = False,
    limits: DocumentLimits | None = None,
    compiled_queries: bool = True,
    execution_shadow: bool = False,
) -> RoostSchema:
    """``compiled_queries``: queries run by compiled plans (schema/compiled.py); off, every
    operation takes graphql-core's ordinary path. ``execution_shadow`` (tests only): each
    planned query is executed by graphql-core too, and a difference fails the request."""
    limits = limits or DocumentLimits()
    rules: tuple[type[ASTValidationRule], ...] = specified_rules
    if production:
        rules = (*rules, NoSchemaIntrospectionCustomRule)
    # Factories, not instances: each request gets its own extension objects.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(ErrorConvention, hide_suggestions=production),
        lambda: DocumentChecks(documents=schema.documents),
        RefuseUnauthenticated,
    ]
    schema = RoostSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # The scalars are declared before any field uses them, so clients can rely on them.
        types=[
            UserType,
            ListingType,
            BookingType,
            PaymentType,
            PayoutType,
            ReviewType,
            MessageThreadType,
            MessageType,
            NotificationType,
            AuditEntryType,
            DisputeType,
            WishlistType,
            *SCALAR_MAP.keys(),
        ],
        extensions=extensions,
        execution_context_class=RoostExecutionContext,
        # scalar_map is typed Mapping[object, ...], whose key type a dict[type, ...] cannot match.
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALAR_MAP),  # type: ignore[arg-type]
    )
    schema.documents = Documents(schema._schema, limits, rules)
    if compiled_queries:
        compiled.enable(schema._schema, shadow=execution_shadow)
    return schema
