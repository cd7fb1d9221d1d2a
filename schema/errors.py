"""The error convention, implemented once.

Every error a client receives carries ``extensions.code``:
- a ``DomainError`` raised by a service keeps its message and code (and ``fields``);
- a document that does not parse is ``GRAPHQL_PARSE_FAILED``, one that does not validate
  against the schema is ``GRAPHQL_VALIDATION_FAILED``; variables of the wrong shape are
  ``BAD_USER_INPUT``;
- anything else is a bug: logged with its traceback and request id, and shown to the client
  only as ``INTERNAL_SERVER_ERROR`` with no detail.
"""

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, VariableDefinitionNode
from graphql.validation.validate import ValidationAbortedError
from sqlalchemy.exc import DBAPIError
from strawberry.extensions import SchemaExtension

from db.database import RETRYABLE_STATES, sqlstate
from db.outages import note_if_unreachable, unreachable_service
from schema.documents import bad_user_input, variable_problems
from schema.scalars import InvalidScalar
from services.errors import Conflict, DomainError, ServiceUnavailable

log = logging.getLogger("roost.graphql")

INTERNAL_MESSAGE = "Internal server error."
# What graphql-core says only as "Validation aborted.": it stopped at one of its budgets.
TOO_COMPLEX = (
    "The document is too complex to check: too many fields of one name in one place, or "
    "fragments spread too widely or nested too deeply."
)
_SUGGESTION = re.compile(r"\s*Did you mean .*\?$", re.DOTALL)


def is_request_error(error: GraphQLError) -> bool:
    """A fault of the request itself (document or variables), found before any resolver ran."""
    if error.path is not None:
        return False
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return True
    # A variable that a scalar could not parse: graphql-core points at its definition.
    return bool(error.nodes) and isinstance(original, (ValueError, TypeError, ArithmeticError))


def _refused_value(error: GraphQLError) -> bool:
    """A value a scalar refused, written in the document or sent in a variable: the client's
    input is wrong, however graphql-core came to report it."""
    seen: BaseException | None = error.original_error
    while isinstance(seen, GraphQLError):
        seen = seen.original_error
    return isinstance(seen, InvalidScalar)


def is_unexpected(error: GraphQLError) -> bool:
    return not isinstance(error.original_error, DomainError) and not is_request_error(error)


def present_error(
    error: GraphQLError, *, validation_errors: frozenset[int], hide_suggestions: bool
) -> GraphQLError:
    """The error as the client may see it. Idempotent: a presented error stays as it is."""
    original = error.original_error
    if original is not None and unreachable_service(original) is not None:
        original = ServiceUnavailable()
    elif isinstance(original, DBAPIError) and sqlstate(original) in RETRYABLE_STATES:
        # Contention that outlasted the retries: the client may simply try again.
        original = Conflict("Too many changes at once; try again.")
    if isinstance(original, DomainError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            path=error.path,
            extensions=original.extensions(),
        )
    if original is None and error.extensions and "code" in error.extensions:
        return error
    if is_request_error(error):
        if isinstance(error, GraphQLSyntaxError):
            code = "GRAPHQL_PARSE_FAILED"
        elif _refused_value(error):
            code = "BAD_USER_INPUT"
        elif id(error) in validation_errors:
            code = "GRAPHQL_VALIDATION_FAILED"
        else:
            code = "BAD_USER_INPUT"
        message = _SUGGESTION.sub("", error.message) if hide_suggestions else error.message
        if isinstance(error, ValidationAbortedError):
            message = TOO_COMPLEX
        # graphql-core words a literal null the Python way.
        message = message.replace("not to be None.", "not to be null.")
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            extensions={"code": code},
        )
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


def _is_variable_error(error: GraphQLError) -> bool:
    return bool(
        is_request_error(error)
        and error.nodes
        and isinstance(error.nodes[0], VariableDefinitionNode)
    )


def log_unexpected_errors(errors: list[GraphQLError], operation_name: str | None) -> None:
    for error in errors:
        if error.original_error is not None and note_if_unreachable(error.original_error):
            continue  # an outage: logged once while it lasts, not once per request
        if is_unexpected(error):
            original = error.original_error or error
            log.error(
                "unexpected error in a GraphQL operation",
                exc_info=(type(original), original, original.__traceback__),
                extra={"graphql_path": error.path, "operation": operation_name},
            )


class ErrorConvention(SchemaExtension):
    def __init__(self, *, hide_suggestions: bool) -> None:
        self.hide_suggestions = hide_suggestions
        self._validation_errors: frozenset[int] = frozenset()

    def on_validate(self) -> Iterator[None]:
        yield
        errors = self.execution_context.pre_execution_errors or []
        self._validation_errors = frozenset(id(error) for error in errors)

    def _variables_by_field(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """Variables graphql-core refused, as one BAD_USER_INPUT naming each field's problem."""
        if not any(_is_variable_error(error) for error in errors):
            return errors
        context = self.execution_context
        problems = variable_problems(
            context.schema._schema,
            context.graphql_document,
            context.operation_name,
            context.variables,
        )
        if not problems:
            return errors
        kept = [error for error in errors if not _is_variable_error(error)]
        return [bad_user_input(problems), *kept]

    def on_operation(self) -> Iterator[None]:
        yield
        self._present(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # A websocket sends each result while the operation is still open: the errors are
        # presented here, so they read as they would over HTTP.
        self._present(result)
        yield

    def _present(self, result: Any) -> None:
        if result is not None and getattr(result, "errors", None):
            result.errors = self._variables_by_field(result.errors)
            result.errors = [
                present_error(
                    error,
                    validation_errors=self._validation_errors,
                    hide_suggestions=self.hide_suggestions,
                )
                for error in result.errors
            ]
