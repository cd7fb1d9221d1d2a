"""A request whose credentials were refused fails as a whole, before anything executes."""

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension


class RefuseUnauthenticated(SchemaExtension):
    """Answers the operation with the error the context getter found (``Context.refusal``:
    a token that did not verify) instead of running it: data null, that one error. Queries
    and mutations alike, public ones included, so a client never mistakes a bad token for
    being signed out."""

    def on_execute(self) -> Iterator[None]:
        refusal = getattr(self.execution_context.context, "refusal", None)
        if refusal is not None:
            # A result set before yielding is what strawberry answers, executing nothing.
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(str(refusal), original_error=refusal)]
            )
        yield
