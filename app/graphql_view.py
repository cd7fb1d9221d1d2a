"""The GraphQL endpoint: strawberry's ASGI view with Roost's context, limits and JSON."""

import asyncio
import logging
import re
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from auth.viewer import ANONYMOUS
from db.loaders import Loaders
from schema.context import Context

log = logging.getLogger("roost.graphql")

_OPERATION_NAME = re.compile(r"^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")


class RoostGraphQL(GraphQL[Context, None]):
    def __init__(self, *args: Any, request_timeout_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout_seconds = request_timeout_seconds

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        database = request.app.state.database
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            viewer=ANONYMOUS,
            database=database,
            loaders=Loaders(database),
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson also refuses bytes that are not UTF-8, with the same JSONDecodeError.
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, (dict, list)):
            raise HTTPException(400, "The request must be a JSON object.")
        return parsed

    async def execute_single(self, request: Request, *args: Any, **kwargs: Any) -> ExecutionResult:
        request_data = kwargs["request_data"]
        request.state.graphql_operation = request_data.operation_name or _operation_name(
            request_data.query
        )
        try:
            async with asyncio.timeout(self.request_timeout_seconds):
                return await super().execute_single(request, *args, **kwargs)
        except TimeoutError:
            log.warning("GraphQL operation stopped at its deadline")
            return ExecutionResult(
                data=None,
                errors=[
                    StrawberryGraphQLError(
                        "The request took longer than its time limit and was stopped.",
                        extensions={"code": "TIMEOUT"},
                    )
                ],
            )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # The schema's extension presents every error; this catches one raised outside it.
        if result.errors:
            result.errors = [_ensure_code(error) for error in result.errors]
        return process_result(result)


def _operation_name(query: object) -> str | None:
    if isinstance(query, str) and (match := _OPERATION_NAME.match(query)):
        return match.group(1)
    return None


def _ensure_code(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    return GraphQLError(
        "Internal server error.", path=error.path, extensions={"code": "INTERNAL_SERVER_ERROR"}
    )
