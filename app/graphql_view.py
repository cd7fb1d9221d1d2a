"""The GraphQL endpoint: strawberry's ASGI view with Roost's context, limits and JSON."""

import asyncio
import hashlib
import logging
import re
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import DocumentNode, FieldNode, OperationDefinitionNode, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from app.authentication import authenticate_request
from app.websocket import RoostTransportWS
from db.loaders import Loaders
from db.outages import note_if_unreachable
from schema.context import Context
from schema.errors import present_error
from schema.root import RoostSchema
from services.search_cache import current_generation
from services.sessions import Client

log = logging.getLogger("roost.graphql")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
OUTAGE_RETRY_AFTER_SECONDS = "5"
_REQUEST_ERROR_CODES = frozenset(
    {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
)
_OPERATION_NAME = re.compile(r"^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")


class RoostGraphQL(GraphQL[Context, None]):
    schema: RoostSchema
    graphql_transport_ws_handler_class = RoostTransportWS

    def __init__(
        self,
        *args: Any,
        request_timeout_seconds: float,
        hide_suggestions: bool,
        cache_seconds: int,
        websocket_token_grace_seconds: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.websocket_token_grace_seconds = websocket_token_grace_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self.hide_suggestions = hide_suggestions
        self.cache_seconds = cache_seconds

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        state = request.app.state
        viewer, refusal = await authenticate_request(request)
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            viewer=viewer,
            database=state.database,
            loaders=Loaders(state.database),
            services=state.services,
            client=Client(
                ip_address=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            ),
            refusal=refusal,
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson also refuses bytes that are not UTF-8, with the same JSONDecodeError.
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: strawberry sends bytes over a websocket as binary frames, which
        # graphql-transport-ws clients do not read.
        return orjson.dumps(data).decode()

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, (dict, list)):
            raise HTTPException(400, "The request must be a JSON object.")
        return parsed

    async def execute_single(self, request: Request, *args: Any, **kwargs: Any) -> ExecutionResult:
        request_data = kwargs["request_data"]
        if not isinstance(request_data.operation_name, str | None):
            raise HTTPException(400, "operationName must be a string.")
        request.state.graphql_operation = request_data.operation_name or _operation_name(
            request_data.query
        )
        try:
            async with asyncio.timeout(self.request_timeout_seconds):
                result = await self._execute_or_reuse(request, request_data, args, kwargs)
        except TimeoutError:
            log.warning("GraphQL operation stopped at its deadline")
            result = ExecutionResult(
                data=None,
                errors=[
                    StrawberryGraphQLError(
                        "The request took longer than its time limit and was stopped.",
                        extensions={"code": "TIMEOUT"},
                    )
                ],
            )
        # The schema's extension presents nearly every error; this catches those raised
        # outside its reach (a parse error from the parser cache, for one).
        if result.errors:
            result.errors = [
                present_error(
                    error, validation_errors=frozenset(), hide_suggestions=self.hide_suggestions
                )
                for error in result.errors
            ]
            request.state.graphql_error_code = (result.errors[0].extensions or {}).get("code")
        sub_response = kwargs["sub_response"]
        if _failed_for_an_outage(result):
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = OUTAGE_RETRY_AFTER_SECONDS
        if _accepts_graphql_response_json(request):
            # The newer media type lets a client tell a rejected request by its status.
            sub_response.media_type = GRAPHQL_RESPONSE_JSON
            if _rejected_before_execution(result):
                sub_response.status_code = 400
        return result

    async def _execute_or_reuse(
        self, request: Request, request_data: Any, args: Any, kwargs: Any
    ) -> ExecutionResult:
        """Anonymous searches are answered from the cache while nothing they show has changed."""
        if (
            not self.cache_seconds
            or "authorization" in request.headers
            or not isinstance(request_data.query, str)
            or not _cacheable(
                (await self.schema.documents.check(request_data.query)).document,
                request_data.operation_name,
            )
        ):
            return await self._answer(request, args, kwargs)
        state = request.app.state
        cache = state.services.response_cache
        try:
            generation = await current_generation(state.database)
        except Exception as error:
            if not note_if_unreachable(error):
                raise
            # The search itself will say what is wrong, the GraphQL way.
            return await self._answer(request, args, kwargs)
        key = hashlib.sha256(
            orjson.dumps(
                [
                    generation,
                    request_data.query,
                    request_data.operation_name,
                    request_data.variables,
                ],
                option=orjson.OPT_SORT_KEYS,
            )
        ).hexdigest()
        if (cached := await cache.get(key)) is not None:
            return ExecutionResult(data=orjson.loads(cached), errors=None)
        result = await self._answer(request, args, kwargs)
        if not result.errors and result.data is not None:
            await cache.set(key, orjson.dumps(result.data), ttl_seconds=self.cache_seconds)
        return result

    async def _answer(self, request: Request, args: Any, kwargs: Any) -> ExecutionResult:
        """The schema answers a query that passes its checks without an error itself; anything
        else strawberry's execute answers, through the schema's extensions."""
        request_data = kwargs["request_data"]
        if self.allow_queries_via_get or request.method != "GET":
            answer = await self.schema.answer_query(
                request_data.query,
                request_data.variables,
                kwargs["context"],
                kwargs["root_value"],
                request_data.operation_name,
                request_data.extensions,
            )
            if answer is not None:
                return answer
        return await super().execute_single(request, *args, **kwargs)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        # As strawberry's, but with orjson's bytes as the body: encode_json's text (which
        # websockets need) would be encoded back to the same bytes, twice the copying.
        response = Response(
            orjson.dumps(response_data),
            status_code=sub_response.status_code or 200,
            media_type=sub_response.media_type or "application/json",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = process_result(result)
        if _accepts_graphql_response_json(request) and _rejected_before_execution(result):
            del response["data"]
        return response


def _failed_for_an_outage(result: ExecutionResult) -> bool:
    """Nothing of the operation was answered, because a backing service is out of reach."""
    return (
        bool(result.errors)
        and (result.data is None or all(value is None for value in result.data.values()))
        and any(
            (error.extensions or {}).get("code") == "SERVICE_UNAVAILABLE"
            for error in result.errors or ()
        )
    )


def _accepts_graphql_response_json(request: Request) -> bool:
    return GRAPHQL_RESPONSE_JSON in request.headers.get("accept", "")


def _rejected_before_execution(result: ExecutionResult) -> bool:
    """The document or its variables were refused, so nothing was executed."""
    return (
        result.data is None
        and bool(result.errors)
        and all(
            error.path is None and (error.extensions or {}).get("code") in _REQUEST_ERROR_CODES
            for error in result.errors or ()
        )
    )


CACHEABLE_FIELDS = frozenset({"searchListings", "amenities", "__typename"})


def _cacheable(document: DocumentNode | None, operation_name: str | None) -> bool:
    """A query whose every root field is public and the same for every anonymous caller."""
    if document is None:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return False
    selections = operations[0].selection_set.selections
    names = {selection.name.value for selection in selections if isinstance(selection, FieldNode)}
    return (
        len(names) == len(selections)
        and names <= CACHEABLE_FIELDS
        and names != {"__typename"}  # nothing worth keeping
    )


def _operation_name(query: object) -> str | None:
    if isinstance(query, str) and (match := _OPERATION_NAME.match(query)):
        return match.group(1)
    return None
