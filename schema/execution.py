"""Execution tuned for Roost's result shapes.

Queries run by compiled plans when one covers them (schema/compiled.py): a search page is
hundreds of plain leaf fields, which graphql-core's generic route makes most of the time
spent on it. Mutations, subscriptions and whatever a plan does not cover take graphql-core's
ordinary path.

Each event of a subscription is executed with a memo of its own (see build_per_event_executor),
and a live message's identical subscriptions of one viewer share one execution
(schema/live_events.py).
"""

import asyncio
import logging
from collections.abc import Awaitable
from copy import copy
from dataclasses import replace
from typing import Any, cast

import orjson
from graphql import ExecutionResult, GraphQLResolveInfoHelpers
from graphql.execution import Executor
from graphql.execution.executor import CollectedErrors
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db.loaders import Loaders
from schema.compiled import (
    ObjectPlan,
    Plans,
    ShadowMismatch,
    execute_plan,
    in_shadow_execution,
    plans_of,
    same_answers,
    shadow_mismatches,
)
from schema.context import Context
from schema.live_events import executions, is_shareable

log = logging.getLogger(__name__)


async def _released(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the operation has been executed")


def _released_track(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the operation has been executed")


_NO_HELPERS = GraphQLResolveInfoHelpers(gather=_released, track=_released_track)


class RoostExecutionContext(StrawberryGraphQLCoreExecutionContext):
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
        under load, bench/search.py; tests/test_request_garbage.py)."""
        self.async_helpers = _NO_HELPERS

    def _execute_or_share(self, serially: bool | None) -> Any:
        """A live event's answer, once for all the viewer's identical subscriptions to it
        (schema/live_events.py)."""
        key = self._shared_key
        if key is None:
            return self._execute_planned(serially)
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

    def _execute_planned(self, serially: bool | None) -> Any:
        """A query by its compiled plan when there is one; graphql-core otherwise, or when
        the plan's execution failed (it then answers the whole operation itself)."""
        plans = plans_of(self.schema)
        if (
            plans is None
            or serially
            or self.abort_signal is not None
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
        ):
            return super().execute_operation(serially)
        plan = plans.plan_for(self)
        if plan is None:
            plans.unplanned += 1
            return super().execute_operation(serially)
        data = execute_plan(self, plan)
        if not isinstance(data, dict | None):
            return self._finish_planned(plan, data, serially)
        if data is None:
            return self._rerun(plans, serially)
        plans.planned += 1
        if plans.shadow:
            return self._shadowed(plan, data)
        return self.build_response(data)

    async def _finish_planned(self, plan: ObjectPlan, pending: Any, serially: bool | None) -> Any:
        plans = cast(Plans, plans_of(self.schema))
        data = await pending
        if data is None:
            result = self._rerun(plans, serially)
            return await result if self.is_awaitable(result) else result
        plans.planned += 1
        if plans.shadow:
            return await self._shadowed(plan, data)
        return self.build_response(data)

    def _rerun(self, plans: Plans, serially: bool | None) -> Any:
        """graphql-core's answer to an operation whose plan failed. A plan fails only where
        graphql-core reports an error: in shadow mode, an answer without one is a mismatch."""
        plans.reran += 1
        result = super().execute_operation(serially)
        if not plans.shadow:
            return result
        if self.is_awaitable(result):
            return self._check_rerun(result)
        return self._check_rerun_result(cast(ExecutionResult, result))

    async def _check_rerun(self, pending: Any) -> Any:
        return self._check_rerun_result(await pending)

    def _check_rerun_result(self, result: ExecutionResult) -> ExecutionResult:
        if not result.errors:
            log.error("A plan failed where graphql-core answered without errors")
            shadow_mismatches.append(self.operation.loc.source.body if self.operation.loc else "")
            raise ShadowMismatch("a plan failed where graphql-core reported no error")
        return result

    async def _shadowed(self, plan: ObjectPlan, data: dict[str, Any]) -> Any:
        """Test-only: the same operation by graphql-core on fresh dataloaders; a planned
        answer that differs from it fails the request (and the test) loudly.

        The data may change between the two executions (another request, another server's
        news): when they differ, the plan runs once more, after graphql-core, and only a
        plan that still answers differently is a mismatch."""
        token = in_shadow_execution.set(True)
        try:
            answer = StrawberryGraphQLCoreExecutionContext.execute_operation(self._fresh_copy())
            if self.is_awaitable(answer):
                answer = await answer
            ordinary = cast(ExecutionResult, answer)
            same = same_answers((data, None), (ordinary.data, ordinary.errors))
            if not same:
                again = execute_plan(self._fresh_copy(), plan)
                if not isinstance(again, dict | None):
                    again = await again
                same = again is not None and same_answers(
                    (again, None), (ordinary.data, ordinary.errors)
                )
                if same:
                    log.info("The data changed between a planned and its shadow execution")
        finally:
            in_shadow_execution.reset(token)
        if not same:
            log.error(
                "Compiled plan and graphql-core differ for %r:\nplanned  %s\nordinary %s",
                self.operation.name.value if self.operation.name else None,
                orjson.dumps(data, default=repr).decode(),
                orjson.dumps(ordinary.data, default=repr).decode(),
            )
            shadow_mismatches.append(self.operation.loc.source.body if self.operation.loc else "")
            raise ShadowMismatch(
                "the compiled plan's answer differs from graphql-core's (see the log)"
            )
        return self.build_response(data)

    def _fresh_copy(self) -> "RoostExecutionContext":
        """This execution again, with errors of its own and fresh dataloaders."""
        fresh = copy(self)
        fresh.collected_errors = CollectedErrors()
        fresh._relevant_sub_fields = {}
        context = self.context_value
        if isinstance(context, Context):
            fresh.context_value = replace(context, loaders=Loaders(context.database))
        return fresh

    async def _follow(self, shared: "asyncio.Future[Any]", serially: bool | None) -> Any:
        try:
            result = await asyncio.shield(shared)
        except Exception:  # its first listener's execution failed: run our own
            result = None
        if result is None or result.errors:
            own = super().execute_operation(serially)
            return await own if self.is_awaitable(own) else own
        return result
