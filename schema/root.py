"""The root types and the Schema object."""

from collections.abc import Callable, Iterator
from functools import partial
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationType,
    get_operation_ast,
    specified_rules,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import execute as graphql_execute
from strawberry import relay
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

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
from schema.context import Context
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


class PresentAnswered(SchemaExtension):
    """Gives strawberry's execute what RoostSchema.answer_query found (``Context.answered``):
    an answer with errors, presented like any other, or the exception the execution raised,
    raised where graphql-core would have raised it. The operation is not executed again."""

    def on_execute(self) -> Iterator[None]:
        answered = getattr(self.execution_context.context, "answered", None)
        if isinstance(answered, Exception):
            raise answered
        if answered is not None and self.execution_context.result is None:
            # A result set before yielding is what strawberry answers, executing nothing.
            self.execution_context.result = answered
        yield


class RoostSchema(strawberry.Schema):
    documents: Documents

    async def answer_query(
        self,
        query: object,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult | None:
        """A query's answer straight from graphql-core, when it is a query that passes every
        check of ``execute`` and is answered without an error; None for anything else, for
        ``execute`` to answer: its extensions check and present what fails. An answer with
        errors is handed to it in the context, to present, not to execute again.

        ``execute`` runs three extensions' hooks around graphql-core's execution: some 8% of
        a search page's CPU (bench/search.py), for checks that, on a query that passes them,
        change nothing."""
        if not isinstance(query, str) or getattr(context, "refusal", None) is not None:
            return None
        checked = await self.documents.check(query)
        document = checked.document
        if checked.errors or document is None:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation != OperationType.QUERY:
            return None
        if self.documents.refusal(document, operation_name, variables or {}) is not None:
            return None
        answer: GraphQLExecutionResult | Exception
        try:
            result = graphql_execute(
                self._schema,
                document,
                root_value=root_value,
                variable_values=variables,
                operation_name=operation_name,
                context_value=context,
                # As strawberry's execute passes it: graphql-core wants a TypeGuard.
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                executor_class=self.execution_context_class,
                operation_extensions=operation_extensions,
            )
            answer = await result if isawaitable(result) else result
        except Exception as error:
            answer = error
        if isinstance(answer, Exception) or answer.errors:
            if isinstance(context, Context):
                context.answered = answer  # for execute to present (PresentAnswered)
            return None
        return ExecutionResult(data=answer.data, errors=None, extensions={})

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
        PresentAnswered,
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
