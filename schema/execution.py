"""Execution tuned for Roost's result shapes: a search page is hundreds of plain leaf fields.

For a field strawberry resolves by plain attribute access (no resolver of ours, no arguments,
no permission, no extension) whose type is a scalar or an enum, the value is read and coerced
directly, skipping the resolve-info object and the resolver wrappers that graphql-core and
strawberry otherwise build for every field. Anything unusual (a null, a coercion problem, a
field middleware) takes the ordinary path, so errors come out exactly as before.

Each event of a subscription is executed with a memo of its own (see build_per_event_executor),
and a live message's identical subscriptions of one viewer share one execution
(schema/live_events.py).
"""

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson
from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    Undefined,
    is_leaf_type,
)
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.live_events import executions, is_shareable


async def _released(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the operation has been executed")


def _released_track(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the operation has been executed")


_NO_HELPERS = GraphQLResolveInfoHelpers(gather=_released, track=_released_track)


class RoostExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        middleware = self.middleware_manager
        if middleware is None or not middleware.middlewares:
            field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
            resolve = field_def.resolve if field_def is not None else None
            if (
                field_def is not None
                and resolve is not None
                and getattr(resolve, "_is_default", False)
                and not field_details_list[0].node.arguments
            ):
                return_type = field_def.type
                if isinstance(return_type, GraphQLNonNull):
                    non_null, leaf = True, return_type.of_type
                else:
                    non_null, leaf = False, return_type
                if is_leaf_type(leaf):
                    try:
                        value = resolve(source, None)
                        if value is None:
                            if not non_null:
                                return None
                        else:
                            coerced = leaf.coerce_output_value(value)
                            if coerced is not None and coerced is not Undefined:
                                return coerced
                    except Exception:  # noqa: S110 (the ordinary path reports it properly)
                        pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        # graphql-core (3.3.2) gives each event of a subscription a copy of its executor that
        # shares one memo of sub-field collections, keyed by the identity of lists every event
        # makes anew: it never hits across events, and it keeps each event's entry for as long
        # as the subscription lives (a thousand subscribers after twenty events: some 400,000
        # objects the garbage collector walks, in pauses of 300 ms and more). A memo per event.
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        if is_shareable(payload) and isinstance(executor, RoostExecutionContext):
            viewer = getattr(self.context_value, "viewer", None)
            executor._shared_key = (
                id(self.operation),
                orjson.dumps(self.variable_values, option=orjson.OPT_SORT_KEYS, default=str),
                getattr(viewer, "user_id", None),
                id(payload),
            )
        return executor

    _shared_key: tuple[Any, ...] | None = None

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = self._execute_or_share(serially)
        if self.is_awaitable(result):
            return self._released_after(result)
        self._release()
        return result

    async def _released_after(self, result: Awaitable[Any]) -> Any:
        try:
            return await result
        finally:
            self._release()

    def _release(self) -> None:
        """Ends the cycle graphql-core makes between an executor and its helpers (bound methods
        of the executor), which held each request's context, its loaders and every row they
        read until the cyclic garbage collector came: a collection every hundred searches
        or so, freeing them all at once while every request of the process waited (70 to 200 ms
        under load, bench/search.py)."""
        self.async_helpers = _NO_HELPERS

    def _execute_or_share(self, serially: bool | None) -> Any:
        """A live event's answer, once for all the viewer's identical subscriptions to it
        (schema/live_events.py)."""
        key = self._shared_key
        if key is None:
            return super().execute_operation(serially)
        shared = executions.get(key)
        if shared is not None:
            if isinstance(shared, asyncio.Future):
                return self._follow(shared, serially)
            return shared
        result: Any = super().execute_operation(serially)
        if self.is_awaitable(result):
            task = asyncio.ensure_future(result)
            executions.remember(key, task, self.operation, self.root_value)
            # Shielded: a listener that leaves mid-way must not cancel the others' answer.
            return asyncio.shield(task)
        if not result.errors:
            executions.remember(key, result, self.operation, self.root_value)
        return result

    async def _follow(self, shared: "asyncio.Future[Any]", serially: bool | None) -> Any:
        try:
            result = await asyncio.shield(shared)
        except Exception:  # its first listener's execution failed: run our own
            result = None
        if result is None or result.errors:
            own = super().execute_operation(serially)
            return await own if self.is_awaitable(own) else own
        return result
