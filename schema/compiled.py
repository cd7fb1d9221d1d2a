"""Compiled execution of queries: a validated operation is turned once into a plan, and a
plan walks the data instead of the document.

graphql-core executes every field of every object by the same generic route: it builds a
resolve-info object, looks the field up, dispatches on its type (non-null? list? leaf?
abstract? object?), collects sub-fields (memoised per field group) and wraps each awaitable
in a coroutine of its own. A search page is some 500 fields, and that route is most of the
time Roost spends on it. A plan does all of that once per document text: for each selection
on each concrete object type it keeps the merged response keys (fragments, type conditions
and ``@skip``/``@include`` resolved for the variable values read by those directives), how
to get each value (an attribute, strawberry's default resolver, or the field's resolve
function with arguments coerced once per execution) and a completer built for the field's
type. Executing it makes no info object for a plain field, dispatches on no type, and awaits
what resolvers return in waves for the whole operation: a dataloader's future (``Loaded``)
itself, other awaitables together in one ``asyncio.gather`` per wave.

Errors are rare on the pages that matter, and their exact form (messages, paths, locations,
order, null propagation) is graphql-core's to define. So a plan does not reproduce them: a
field that raises, a null in a non-null position, a value a serializer refuses or anything
unexpected marks the execution as failed, the plan's partial answer is thrown away, and
graphql-core executes the whole operation again, with the same dataloaders (whose cached
rows make the second run cheap and consistent). Whatever a plan does not cover (field
middleware, introspection fields other than ``__typename``, directives other than
``@skip``/``@include``, fragment variables, an abstract type resolved asynchronously)
falls back to graphql-core for the whole operation, decided when the plan is compiled or,
for what only the data shows, when it runs.

A test-only shadow mode (``ROOST_EXECUTION_SHADOW``) executes every planned query a second
time by graphql-core on fresh dataloaders and fails loudly when the answers differ.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from keyword import iskeyword
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, cast
from weakref import WeakKeyDictionary

import orjson
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_string
from strawberry import relay
from strawberry.relay.utils import to_base64

from schema.arguments import Convert, argument_converter

if TYPE_CHECKING:
    from graphql.execution import Executor

log = logging.getLogger(__name__)

# Documents longer than this are executed by graphql-core: a plan keeps its document's nodes
# alive, and the garbage collector walks every object kept (see schema/documents.py).
MAX_PLANNED_CHARS: Final = 20_000
# Texts of planned documents kept, in characters (most recently used first out last).
PLAN_BUDGET_CHARS: Final = 400_000
# Plans kept per document for distinct values of the variables @skip/@include read.
MAX_VARIANTS: Final = 16
# Object plans per document: each is a function generated and compiled (about 0.4 ms here),
# once per document text. A search page makes 10; a wider document is graphql-core's.
MAX_OBJECT_PLANS: Final = 64

# True while the shadow execution of test runs: tests/helpers.py's StatementCounter ignores
# the statements it sends, so statement-count tests keep counting one execution.
in_shadow_execution: ContextVar[bool] = ContextVar("in_shadow_execution", default=False)


LoadedT = TypeVar("LoadedT")
MadeT = TypeVar("MadeT")


class Loaded(Generic[LoadedT, MadeT]):
    """What a resolver returns for a dataloader's value made into something else, instead of
    an ``async def`` awaiting the loader: graphql-core awaits it like that coroutine, and a
    plan waits on the loader's future itself. A coroutine costs a plan a Task (gathered with
    its wave), and a search page has one for each of 20 hosts and 20 photo lists."""

    __slots__ = ("future", "make")

    def __init__(self, future: "asyncio.Future[LoadedT]", make: Callable[[LoadedT], MadeT]):
        self.future = future
        self.make = make

    def __await__(self) -> Generator[Any, None, MadeT]:
        return self.make((yield from self.future))


class ShadowMismatch(AssertionError):
    """A planned execution answered differently from graphql-core's (shadow mode only)."""


# Every mismatch the shadow mode found in this process: the test suite fails on any.
shadow_mismatches: list[str] = []


# What a completer gets: the run, the value a field (or list item) resolved to, its path.
Complete: TypeAlias = Callable[["_Run", Any, Path | None], Any]


class _Failed(Exception):
    """A plan cannot answer this execution exactly: graphql-core answers it instead."""


# How a field's value is got: its type's name; an attribute; strawberry's resolve function
# for a plain field; a resolver of ours called directly; the field's resolve function.
_TYPENAME, _ATTRIBUTE, _DEFAULT, _DIRECT, _RESOLVER = range(5)


# An argument of a resolver: its GraphQL name, its Python name, and what converts its value.
_Argument: TypeAlias = tuple[str, str, Convert]


class _FieldPlan:
    """One response key of a selection on one concrete object type."""

    __slots__ = (
        "as_is",
        "attribute",
        "complete",
        "direct",
        "field_def",
        "get",
        "has_args",
        "key",
        "kind",
        "needs_path",
        "nodes",
        "resolve",
    )

    def __init__(
        self,
        key: str,
        kind: int,
        field_def: GraphQLField | None,
        nodes: list[FieldNode],
        complete: Complete | None,
        needs_path: bool,
    ) -> None:
        self.key = key
        self.kind = kind
        self.field_def = field_def
        self.nodes = nodes
        self.complete = complete
        # The one type of value its completer passes through as it is (texts, ids, booleans).
        self.as_is: type | None = getattr(complete, "as_is", None)
        self.needs_path = needs_path
        self.get: Callable[[Any], Any] | None = None
        # The attribute ``get`` reads, when it reads one: read by name in the plan's function.
        self.attribute: str | None = None
        self.direct: _DirectCall | None = None
        self.resolve: Callable[..., Any] | None = field_def.resolve if field_def else None
        self.has_args = bool(field_def and (field_def.args or nodes[0].arguments))


class ObjectPlan:
    """The fields selected on one concrete object type, in response order."""

    __slots__ = ("execute", "fields", "is_type_of", "needs_path", "reads_only_attributes", "type")

    def __init__(self, type_: GraphQLObjectType) -> None:
        self.type = type_
        self.fields: list[_FieldPlan] = []
        # The fields' values of one object, completed (see ``_executor_of``).
        self.execute: Callable[[_Run, Any, Path | None], dict[str, Any]] = _not_compiled
        self.is_type_of = type_.is_type_of
        # Whether any field in it, or below it, builds an info object (which carries its path):
        # paths are made only down to those.
        self.needs_path = False
        # Whether every field is a leaf read from an attribute: the same object completes to
        # the same answer within an execution, and is completed once (amenities repeat).
        self.reads_only_attributes = False


ResolverT = TypeVar("ResolverT", bound=Callable[..., Any])


def reads_only_context(resolver: ResolverT) -> ResolverT:
    """Marks a resolver of ours that reads nothing of its ``info`` but ``info.context``: a
    plan hands it an ``Info`` that holds the context alone, and makes no path down to it (a
    search page's listings have three such fields each, and their hosts one). Reading
    anything else of that ``Info`` raises, which fails the plan: graphql-core answers."""
    resolver._reads_only_context = True  # type: ignore[attr-defined]
    return resolver


class _ContextOnly:
    """The resolve info a plan gives the resolvers marked ``reads_only_context``."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


def _ignores_info(function: Callable[..., Any]) -> bool:
    # strawberry's generated is_type_of (for types with interfaces) never reads its info.
    return function.__qualname__.endswith("_get_is_type_of.<locals>.is_type_of")


class _DirectCall:
    """A resolver of ours called as strawberry would call it, without strawberry's wrappers.

    For a field with a resolver but no field extensions (permission classes are extensions)
    and no exception handlers, strawberry's resolve function runs no extension: it converts
    the arguments (schema/arguments.py does it here), builds an ``Info``, hands the resolver
    the source (as ``self``, ``root`` or ``parent``) and the ``Info`` where its signature asks
    for them, and (for an async resolver) wraps its coroutine in one more. This does the same.
    """

    __slots__ = (
        "arguments",
        "context_only",
        "field",
        "info_class",
        "info_name",
        "pass_self",
        "source_names",
        "takes_only_self",
        "wrapped",
    )

    def __init__(self, field: Any, info_class: type[Any], arguments: tuple[_Argument, ...]) -> None:
        resolver = field.base_resolver
        self.field = field
        self.arguments = arguments
        self.info_class = info_class
        self.wrapped: Callable[..., Any] = resolver.wrapped_func
        self.pass_self = resolver.self_parameter is not None
        self.source_names = tuple(
            parameter.name
            for parameter in (resolver.parent_parameter, resolver.root_parameter)
            if parameter is not None
        )
        info = resolver.info_parameter
        self.info_name: str | None = info.name if info is not None else None
        self.takes_only_self = (
            self.pass_self and not self.source_names and self.info_name is None and not arguments
        )
        self.context_only = self.info_name is not None and getattr(
            self.wrapped, "_reads_only_context", False
        )


class _ResolveInfoOnDemand:
    """graphql-core's resolve info, for a resolver of ours that asks for strawberry's ``Info``:
    built on the first read of anything but the context and the path. The resolvers of a search
    page's listings (host, photos, amenities: 60 a page) read only the context."""

    __slots__ = ("_built", "_executor", "_field_plan", "_parent_type", "context", "path")

    def __init__(
        self,
        executor: "Executor[Any]",
        field_plan: "_FieldPlan",
        parent_type: GraphQLObjectType,
        path: Path | None,
    ) -> None:
        self.context = executor.context_value
        self._executor = executor
        self._field_plan = field_plan
        self._parent_type = parent_type
        self.path = path
        self._built: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self._built = self._executor.build_resolve_info(
                self._field_plan.field_def,  # type: ignore[arg-type]
                self._field_plan.nodes,
                self._parent_type,
                self.path,  # type: ignore[arg-type]
            )
        return getattr(self._built, name)


def _direct_call(schema: GraphQLSchema, field_def: GraphQLField) -> _DirectCall | None:
    strawberry_schema = getattr(schema, "_strawberry_schema", None)
    field = field_def.extensions.get("strawberry-definition")
    if (
        strawberry_schema is None
        or field is None
        or getattr(field, "extensions", None)
        or getattr(field, "base_resolver", None) is None
        or not callable(field.base_resolver.wrapped_func)
        or strawberry_schema.schema_converter._exception_handler_specs
    ):
        return None
    config = strawberry_schema.config
    registry = strawberry_schema.schema_converter.scalar_registry
    arguments: list[_Argument] = []
    for argument in getattr(field, "arguments", None) or ():
        convert = argument_converter(argument.type, registry, config.name_converter.from_field)
        if convert is None or argument.python_name is None:
            return None
        name = config.name_converter.from_argument(argument)
        arguments.append((name, argument.python_name, convert))
    if len(arguments) != len(field_def.args):
        return None
    return _DirectCall(field, config.info_class, tuple(arguments))


_NODE_ID = relay.Node.__dict__["_id"].__func__
_NODE_RESOLVE_ID = relay.Node.__dict__["resolve_id"].__func__
_NODE_RESOLVE_TYPENAME = relay.Node.__dict__["resolve_typename"].__func__


def _is_relay_id(direct: _DirectCall) -> bool:
    """Whether the field is strawberry's ``Node.id``."""
    return getattr(direct.wrapped, "__func__", None) is _NODE_ID


def _relay_id(type_name: str) -> Callable[[Any], str]:
    """What strawberry's ``Node.id`` answers, then serializes, for a node of ``type_name``
    that resolves its id and type name as ``Node`` does: its id attribute's value and its
    type's name, encoded. Strawberry builds a resolve info and a ``GlobalID`` for each; a
    node whose class resolves either its own way fails the plan (graphql-core answers)."""

    def get(source: Any) -> str:
        kind = type(source)
        if (
            not isinstance(source, relay.Node)
            or kind.resolve_id.__func__ is not _NODE_RESOLVE_ID
            or kind.resolve_typename.__func__ is not _NODE_RESOLVE_TYPENAME
        ):
            raise _Failed
        return to_base64(type_name, str(getattr(source, kind.resolve_id_attr())))

    return get


class _Uncompilable(Exception):
    """The operation uses something a plan does not cover."""


@dataclass
class _Template:
    """What a document's operation needs compiled per variable set."""

    skip_variables: tuple[str, ...]
    variants: dict[tuple[Any, ...], "ObjectPlan | None"] = field(default_factory=dict)


class Plans:
    """The compiled plans of one schema, per document text and operation name."""

    def __init__(self, schema: GraphQLSchema, *, shadow: bool = False) -> None:
        self.schema = schema
        self.shadow = shadow
        self._templates: OrderedDict[tuple[str, str | None], _Template | None] = OrderedDict()
        self._chars = 0
        # Counters for tests and benchmarks.
        self.planned = 0  # executions answered by a plan
        self.reran = 0  # planned executions that failed and were answered by graphql-core
        self.unplanned = 0  # executions a plan did not cover

    def plan_for(self, executor: "Executor[Any]") -> ObjectPlan | None:
        """The plan for this execution, or None when graphql-core must execute it."""
        operation = executor.operation
        if operation.operation != OperationType.QUERY or operation.loc is None:
            return None
        text = operation.loc.source.body
        if len(text) > MAX_PLANNED_CHARS:
            return None
        key = (text, operation.name.value if operation.name else None)
        template = self._templates.get(key, _ABSENT)
        if template is _ABSENT:
            template = _template_of(operation, executor)
            self._keep(key, template)
        else:
            self._templates.move_to_end(key)
        if template is None:
            return None
        coerced = executor.variable_values.coerced
        values = tuple(coerced.get(name) for name in template.skip_variables)
        variant = template.variants.get(values, _ABSENT)
        if variant is _ABSENT:
            try:
                variant = _Compiler(executor).root_plan()
            except _Uncompilable:
                variant = None
            if len(template.variants) < MAX_VARIANTS:
                template.variants[values] = variant
        return cast("ObjectPlan | None", variant)

    def _keep(self, key: tuple[str, str | None], template: _Template | None) -> None:
        self._templates[key] = template
        self._chars += len(key[0])
        while self._chars > PLAN_BUDGET_CHARS and self._templates:
            (text, _), _ = self._templates.popitem(last=False)
            self._chars -= len(text)


_ABSENT: Final[Any] = object()
_plans: "WeakKeyDictionary[GraphQLSchema, Plans]" = WeakKeyDictionary()


def enable(schema: GraphQLSchema, *, shadow: bool = False) -> Plans:
    """Queries on ``schema`` are executed by plans from now on."""
    plans = _plans[schema] = Plans(schema, shadow=shadow)
    return plans


def plans_of(schema: GraphQLSchema) -> Plans | None:
    return _plans.get(schema)


def totals() -> dict[str, int]:
    """How executions went, over every schema of this process (for tests and benchmarks)."""
    every = list(_plans.values())
    return {
        "planned": sum(plans.planned for plans in every),
        "reran": sum(plans.reran for plans in every),
        "unplanned": sum(plans.unplanned for plans in every),
    }


def _template_of(operation: OperationDefinitionNode, executor: "Executor[Any]") -> _Template | None:
    """Which variables decide the shape of a plan; None when no plan can cover the operation."""
    if operation.directives:
        return None  # @experimental_disableErrorPropagation and the like
    skip_variables: set[str] = set()
    seen_fragments: set[str] = set()
    stack: list[SelectionSetNode] = [operation.selection_set]
    while stack:
        for selection in stack.pop().selections:
            for directive in selection.directives or ():
                if directive.name.value not in ("skip", "include"):
                    return None
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        skip_variables.add(argument.value.name.value)
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__") and name != "__typename":
                    return None  # introspection: rare, and graphql-core's business
                if selection.selection_set is not None:
                    stack.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                if selection.arguments:
                    return None  # fragment arguments (experimental)
                fragment_name = selection.name.value
                if fragment_name not in seen_fragments:
                    seen_fragments.add(fragment_name)
                    fragment = executor.fragment_definitions.get(fragment_name)
                    if fragment is None or fragment.variable_definitions:
                        return None
                    if fragment.directives:
                        return None
                    stack.append(fragment.selection_set)
    return _Template(tuple(sorted(skip_variables)))


class _Compiler:
    """Builds the plans of one operation for one set of @skip/@include values."""

    def __init__(self, executor: "Executor[Any]") -> None:
        self.executor = executor
        self.schema = executor.schema
        # Object plans per (type, field group): a selection reached twice shares one plan. The
        # group is kept with its plan: its id is the key, and must not be reused meanwhile.
        self._objects: dict[tuple[str, int], tuple[list[FieldDetails], ObjectPlan]] = {}
        self._plans = 0

    def root_plan(self) -> ObjectPlan:
        executor = self.executor
        root_type = self.schema.query_type
        if root_type is None:
            raise _Uncompilable
        grouped, defer_usages, _ = collect_fields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            root_type,
            executor.operation,
            executor.hide_suggestions,
        )
        if defer_usages:
            raise _Uncompilable
        return self._object_plan(root_type, grouped)

    def _object_plan(
        self, type_: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> ObjectPlan:
        self._plans += 1
        if self._plans > MAX_OBJECT_PLANS:
            raise _Uncompilable
        plan = ObjectPlan(type_)
        for key, details in grouped.items():
            if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
                raise _Uncompilable
            nodes = [d.node for d in details]
            name = nodes[0].name.value
            if name == "__typename":
                plan.fields.append(_FieldPlan(key, _TYPENAME, None, nodes, None, False))
                continue
            field_def = type_.fields.get(name)
            if field_def is None:
                raise _Uncompilable
            complete, needs_path = self._completer(field_def.type, details, type_, field_def)
            resolve = field_def.resolve
            if resolve is None:
                raise _Uncompilable  # graphql-core's default resolver: not in this schema
            if getattr(resolve, "_is_default", False):
                strawberry_field = field_def.extensions.get("strawberry-definition")
                if (
                    strawberry_field is not None
                    and getattr(strawberry_field, "default_resolver", None) is getattr
                ):
                    field_plan = _FieldPlan(key, _ATTRIBUTE, field_def, nodes, complete, needs_path)
                    field_plan.get = attrgetter(strawberry_field.python_name)
                    field_plan.attribute = strawberry_field.python_name
                else:
                    field_plan = _FieldPlan(key, _DEFAULT, field_def, nodes, complete, needs_path)
            else:
                direct = _direct_call(self.schema, field_def)
                if direct is not None and _is_relay_id(direct):
                    # The relay id, encoded straight from the node's id attribute.
                    field_plan = _FieldPlan(key, _ATTRIBUTE, field_def, nodes, complete, needs_path)
                    field_plan.get = _relay_id(type_.name)
                    plan.fields.append(field_plan)
                    continue
                if direct is not None and direct.takes_only_self:
                    # Called with the source alone, as an attribute is read.
                    field_plan = _FieldPlan(key, _ATTRIBUTE, field_def, nodes, complete, needs_path)
                    field_plan.get = direct.wrapped
                    plan.fields.append(field_plan)
                    continue
                kind = _RESOLVER if direct is None else _DIRECT
                builds_info = direct is None or (
                    direct.info_name is not None and not direct.context_only
                )
                field_plan = _FieldPlan(
                    key, kind, field_def, nodes, complete, needs_path or builds_info
                )
                field_plan.direct = direct
            plan.fields.append(field_plan)
        plan.needs_path = any(field_plan.needs_path for field_plan in plan.fields)
        plan.reads_only_attributes = all(
            field_plan.kind == _TYPENAME
            or (
                type(field_plan.get) is attrgetter
                and field_plan.field_def is not None
                and is_leaf_type(get_named_type(field_plan.field_def.type))
            )
            for field_plan in plan.fields
        )
        plan.execute = _executor_of(plan)
        return plan

    def _sub_plan(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> ObjectPlan:
        key = (type_.name, id(details))
        known = self._objects.get(key)
        if known is None:
            grouped, defer_usages, _ = collect_subfields(
                self.schema,
                self.executor.fragments,
                self.executor.variable_values,
                self.executor.operation,
                type_,
                details,
                self.executor.hide_suggestions,
            )
            if defer_usages:
                raise _Uncompilable
            known = self._objects[key] = (details, self._object_plan(type_, grouped))
        return known[1]

    def _completer(
        self,
        type_: GraphQLOutputType,
        details: list[FieldDetails],
        parent_type: GraphQLObjectType,
        field_def: GraphQLField,
        non_null: bool = False,
    ) -> tuple[Complete, bool]:
        """How to complete a value of ``type_`` (held in a non-null type when ``non_null``),
        and whether that needs the value's path."""
        if isinstance(type_, GraphQLNonNull):
            if is_leaf_type(type_.of_type):
                return _leaf(type_.of_type.coerce_output_value, non_null=True), False
            if isinstance(type_.of_type, GraphQLList | GraphQLObjectType):
                return self._completer(type_.of_type, details, parent_type, field_def, True)
            inner, needs_path = self._completer(type_.of_type, details, parent_type, field_def)
            return _non_null(inner), needs_path
        if isinstance(type_, GraphQLList):
            inner, needs_path = self._completer(type_.of_type, details, parent_type, field_def)
            return _list(inner, needs_path, non_null=non_null), needs_path
        if is_leaf_type(type_):
            return _leaf(type_.coerce_output_value, non_null=False), False
        if isinstance(type_, GraphQLObjectType):
            sub_plan = self._sub_plan(type_, details)
            return _object(sub_plan, non_null=non_null), sub_plan.needs_path
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            plans = {
                possible.name: self._sub_plan(possible, details)
                for possible in self.schema.get_possible_types(type_)
            }
            nodes = [d.node for d in details]
            return _abstract(type_, plans, field_def, nodes, parent_type), True
        raise _Uncompilable


def _non_null(inner: Complete) -> Complete:
    def complete(run: "_Run", value: Any, path: Path | None) -> Any:
        completed = inner(run, value, path)
        if completed is None:
            raise _Failed
        return completed

    return complete


# Values graphql-core's own serializers return as they are.
_AS_IS: Final[dict[Callable[[Any], Any], type]] = {
    serialize_string: str,
    serialize_id: str,
    serialize_boolean: bool,
}


def _leaf(coerce: Callable[[Any], Any], *, non_null: bool) -> Complete:
    def complete(run: "_Run", value: Any, path: Path | None) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise _Failed  # null in a non-null position: graphql-core reports it
            return None
        if isinstance(value, Exception):
            raise _Failed
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Failed
        return coerced

    as_is = _AS_IS.get(coerce)
    if as_is is None:
        return complete

    # Most leaves of a page are texts, passed through as they are (by execute_object itself
    # for the value of a field, which reads this).
    def complete_plain(run: "_Run", value: Any, path: Path | None) -> Any:
        if type(value) is as_is:
            return value
        return complete(run, value, path)

    complete_plain.as_is = as_is  # type: ignore[attr-defined]
    return complete_plain


def _list(item: Complete, needs_path: bool, *, non_null: bool) -> Complete:
    # Items of a plan completed once per object (``_object``): one already completed in this
    # execution is looked up first (a search page lists some 270 amenities, of a few dozen).
    once: ObjectPlan | None = getattr(item, "once", None)

    def complete(run: "_Run", value: Any, path: Path | None) -> Any:
        if type(value) is not list:
            if value is None or value is Undefined:
                if non_null:
                    raise _Failed
                return None
            if isinstance(value, Exception) or not is_iterable(value):
                raise _Failed
            if run.is_async_iterable(value):
                raise _Failed
        is_awaitable = run.is_awaitable
        completed: list[Any] = []
        append = completed.append
        known = run.completed.get(id(once)) if once is not None else None
        for index, element in enumerate(value):
            if known is not None and (answer := known.get(id(element))) is not None:
                append(answer[1])
                continue
            element_path = Path(path, index, None) if needs_path else None
            if type(element) not in _NOT_AWAITABLE and _awaitable(element, is_awaitable):
                append(None)
                run.pending.append((element, item, element_path, completed, index))
            else:
                append(item(run, element, element_path))
        return completed

    return complete


def _object(plan: ObjectPlan, *, non_null: bool = False) -> Complete:
    # Typed as taking no info: only strawberry's own, which ignores it, is called.
    is_type_of = cast("Callable[[Any, None], Any] | None", plan.is_type_of)
    plain_check = is_type_of is not None and _ignores_info(is_type_of)
    once = plan.reads_only_attributes

    def complete(run: "_Run", value: Any, path: Path | None) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise _Failed
            return None
        if isinstance(value, Exception):
            raise _Failed
        if is_type_of is not None and not plain_check:
            raise _Failed  # an is_type_of of our own would need an info object
        if is_type_of is not None and not is_type_of(value, None):
            raise _Failed
        if once:
            known = run.completed.get(id(plan))
            if known is None:
                known = run.completed[id(plan)] = {}
            answer = known.get(id(value))
            if answer is not None:
                return answer[1]
            completed = plan.execute(run, value, path)
            known[id(value)] = (value, completed)  # the value kept: its id stays its own
            return completed
        return plan.execute(run, value, path)

    if once:
        complete.once = plan  # type: ignore[attr-defined]
    return complete


def _abstract(
    abstract_type: GraphQLAbstractType,
    plans: dict[str, ObjectPlan],
    field_def: GraphQLField,
    nodes: list[FieldNode],
    parent_type: GraphQLObjectType,
) -> Complete:
    resolve_type = abstract_type.resolve_type
    completers = {name: _object(plan) for name, plan in plans.items()}

    def complete(run: "_Run", value: Any, path: Path | None) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception) or resolve_type is None or path is None:
            raise _Failed
        info = run.executor.build_resolve_info(field_def, nodes, parent_type, path)
        runtime_name = resolve_type(value, info, abstract_type)
        if not isinstance(runtime_name, str):
            close = getattr(runtime_name, "close", None)
            if close is not None:
                close()  # a coroutine never awaited: graphql-core resolves it again
            raise _Failed
        object_complete = completers.get(runtime_name)
        if object_complete is None:
            raise _Failed
        return object_complete(run, value, path)

    return complete


# Types whose values are never awaitable: the plain ones (as strawberry's is_awaitable knows
# too, and decimals), and each class one of whose values was found not to be, when the class
# looks its values' attributes up the ordinary way (so no value of it can answer otherwise;
# an enum's class has a ``__getattr__`` of its metaclass, for its members, not its values').
_NOT_AWAITABLE: set[type] = {type(None), bool, int, float, str, list, tuple, dict, Decimal}
_NOT_AWAITABLE_MAX: Final = 4_096


def _awaitable(value: Any, is_awaitable: Callable[[Any], bool]) -> bool:
    if is_awaitable(value):
        return True
    kind = type(value)
    if (
        not any("__getattr__" in vars(base) for base in kind.__mro__)
        and kind.__getattribute__ is object.__getattribute__  # type: ignore[comparison-overlap]
        and len(_NOT_AWAITABLE) < _NOT_AWAITABLE_MAX
    ):
        _NOT_AWAITABLE.add(kind)
    return False


def _direct_source(direct: _DirectCall, index: int, at: str, names: dict[str, Any]) -> str:
    """The call of a resolver of ours, in a plan's function: as ``_Run.call_direct`` makes
    it, with the keywords written out; by ``call_direct`` itself for one with arguments."""
    keywords = [*direct.source_names, *([direct.info_name] if direct.info_name else [])]
    if direct.arguments or not all(k.isidentifier() and not iskeyword(k) for k in keywords):
        return f"run.call_direct(F{index}, TYPE, source, {at})"
    names[f"W{index}"] = direct.wrapped
    given = ["source"] if direct.pass_self else []
    given += [f"{name}=source" for name in direct.source_names]
    if direct.info_name is not None:
        names[f"I{index}"] = direct.info_class
        names[f"D{index}"] = direct.field
        names["OnDemand"] = _ResolveInfoOnDemand
        raw_info = f"OnDemand(run.executor, F{index}, TYPE, {at})"
        if direct.context_only:
            raw_info = "run.context_only"
        given.append(f"{direct.info_name}=I{index}(_raw_info={raw_info}, _field=D{index})")
    return f"W{index}({', '.join(given)})"


def _not_compiled(run: "_Run", source: Any, path: Path | None) -> dict[str, Any]:
    raise AssertionError("an object plan executed before it was complete")


def _executor_of(plan: ObjectPlan) -> Callable[["_Run", Any, Path | None], dict[str, Any]]:
    """The plan's fields as one function, one statement after another: the value of each got
    as its kind says (an attribute read by name), passed through when it is a text already,
    completed, or put in the run's wave when it is awaitable; a field that raises marks the
    run failed. Looping over the fields and dispatching on each one's kind cost a search
    page more than the reads themselves.

    The source is made of names only: the field's response key (an alias the client chose)
    and everything else it uses are values of the function's globals, never its text."""
    names: dict[str, Any] = {
        "Path": Path,
        "Loaded": Loaded,
        "NOT_AWAITABLE": _NOT_AWAITABLE,
        "awaitable": _awaitable,
        "TYPE": plan.type,
        "TYPE_NAME": plan.type.name,
    }
    lines = ["def execute(run, source, path):", "    result = {}"]
    if any(field_plan.kind != _TYPENAME for field_plan in plan.fields):
        lines.append("    is_awaitable = run.is_awaitable")
    for index, field_plan in enumerate(plan.fields):
        names[f"K{index}"] = field_plan.key
        key = f"K{index}"
        if field_plan.kind == _TYPENAME:
            lines.append(f"    result[{key}] = TYPE_NAME")
            continue
        names[f"C{index}"] = field_plan.complete
        names[f"F{index}"] = field_plan
        at = "None"
        if field_plan.needs_path:
            lines.append(f"    field_path = Path(path, {key}, TYPE_NAME)")
            at = "field_path"
        attribute = field_plan.attribute
        if attribute is not None and attribute.isidentifier() and not iskeyword(attribute):
            value = f"source.{attribute}"
        elif field_plan.kind == _ATTRIBUTE:
            names[f"G{index}"] = field_plan.get
            value = f"G{index}(source)"
        elif field_plan.kind == _DEFAULT:
            names[f"R{index}"] = field_plan.resolve
            value = f"R{index}(source, None)"
        elif field_plan.kind == _DIRECT:
            value = _direct_source(cast(_DirectCall, field_plan.direct), index, at, names)
        else:
            value = f"run.call_resolver(F{index}, TYPE, source, {at})"
        lines += ["    try:", f"        value = {value}"]
        test = "if"
        if field_plan.as_is is not None:
            names[f"A{index}"] = field_plan.as_is
            lines += [f"        if type(value) is A{index}:", f"            result[{key}] = value"]
            test = "elif"
        lines += [
            f"        {test} type(value) in NOT_AWAITABLE or (",
            "            type(value) is not Loaded and not awaitable(value, is_awaitable)",
            "        ):",
            f"            result[{key}] = C{index}(run, value, {at})",
            "        else:",
            f"            result[{key}] = None",
            f"            run.pending.append((value, C{index}, {at}, result, {key}))",
            "    except Exception:",
            "        run.failed = True",
            f"        result[{key}] = None",
        ]
    lines.append("    return result")
    code = compile("\n".join(lines), f"<plan of {plan.type.name}>", "exec")
    exec(code, names)  # noqa: S102 -- generated from names of ours, see above
    return cast(Callable[["_Run", Any, Path | None], dict[str, Any]], names["execute"])


# An awaitable a resolver returned, and where its completed value goes.
_Pending: TypeAlias = tuple[Any, Complete, Path | None, Any, str | int]


class _Run:
    """One execution of a plan."""

    __slots__ = (
        "arguments",
        "completed",
        "context_only",
        "executor",
        "failed",
        "is_async_iterable",
        "is_awaitable",
        "pending",
    )

    def __init__(self, executor: "Executor[Any]") -> None:
        self.executor = executor
        self.is_awaitable = executor.is_awaitable
        self.is_async_iterable = executor.is_async_iterable
        self.pending: list[_Pending] = []
        self.failed = False
        # Arguments coerced once per field of the plan, not once per object.
        self.arguments: dict[int, dict[str, Any]] = {}
        # Objects of plans that read only attributes, and their answers, per plan and object.
        self.completed: dict[int, dict[int, tuple[Any, dict[str, Any]]]] = {}
        self.context_only = _ContextOnly(executor.context_value)

    def call_direct(
        self,
        field_plan: _FieldPlan,
        type_: GraphQLObjectType,
        source: Any,
        field_path: Path | None,
    ) -> Any:
        """A resolver of ours, called as strawberry would (``_DirectCall``)."""
        direct = cast(_DirectCall, field_plan.direct)
        kwargs: dict[str, Any] = {}
        if direct.info_name is not None:
            raw_info = (
                self.context_only
                if direct.context_only
                else _ResolveInfoOnDemand(self.executor, field_plan, type_, field_path)
            )
            kwargs[direct.info_name] = direct.info_class(_raw_info=raw_info, _field=direct.field)
        for name in direct.source_names:
            kwargs[name] = source
        if direct.arguments:
            given = self._arguments(field_plan)
            for graphql_name, python_name, convert in direct.arguments:
                if graphql_name in given:
                    kwargs[python_name] = convert(given[graphql_name])
        if direct.pass_self:
            return direct.wrapped(source, **kwargs)
        return direct.wrapped(**kwargs)

    def call_resolver(
        self,
        field_plan: _FieldPlan,
        type_: GraphQLObjectType,
        source: Any,
        field_path: Path | None,
    ) -> Any:
        """The field's own resolve function, with graphql-core's resolve info."""
        info = self.executor.build_resolve_info(
            field_plan.field_def,  # type: ignore[arg-type]
            field_plan.nodes,
            type_,
            field_path,  # type: ignore[arg-type]
        )
        return field_plan.resolve(source, info, **self._arguments(field_plan))  # type: ignore[misc]

    def _arguments(self, field_plan: _FieldPlan) -> dict[str, Any]:
        if not field_plan.has_args:
            return {}
        arguments = self.arguments.get(id(field_plan))
        if arguments is None:
            executor = self.executor
            arguments = self.arguments[id(field_plan)] = get_argument_values(
                field_plan.field_def,  # type: ignore[arg-type]
                field_plan.nodes[0],
                executor.variable_values,
                None,
                executor.hide_suggestions,
            )
        return arguments

    async def settle(self) -> None:
        """Awaits what resolvers returned, wave after wave: everything one wave's completions
        ask for is awaited together in the next (dataloaders batch across the whole wave)."""
        while self.pending:
            wave, self.pending = self.pending, []
            # Completions run only after a wave settled: a cancelled wave leaves nothing unstarted.
            values = await _settled(wave)
            for (_, complete, path, container, key), value in zip(wave, values, strict=True):
                if isinstance(value, BaseException):
                    if not isinstance(value, Exception):
                        raise value
                    self.failed = True
                    continue
                try:
                    container[key] = complete(self, value, path)
                except Exception:
                    self.failed = True


async def _settled(wave: list[_Pending]) -> list[Any]:
    """The values of a wave's awaitables, or the exceptions they raised. A ``Loaded`` is its
    future's value made: the futures are awaited one by one (a batch completes them all at
    once, so this wakes once a batch), the rest concurrently as Tasks."""
    others = [p[0] for p in wave if type(p[0]) is not Loaded]
    other_values: list[Any] = []
    gathered: asyncio.Future[list[Any]] | None = None
    if len(others) == 1:
        try:
            other_values = [await others[0]]
        except Exception as error:
            other_values = [error]
    elif others:
        gathered = asyncio.gather(*others, return_exceptions=True)
    try:
        for pending in wave:
            awaitable = pending[0]
            if type(awaitable) is Loaded and not awaitable.future.done():
                try:
                    await awaitable.future
                except Exception:  # noqa: S110 -- read with its value below
                    pass
        if gathered is not None:
            other_values = await gathered
    except BaseException:
        if gathered is not None:
            gathered.cancel()
        raise
    next_other = iter(other_values).__next__
    values: list[Any] = []
    for pending in wave:
        awaitable = pending[0]
        if type(awaitable) is not Loaded:
            values.append(next_other())
            continue
        future = awaitable.future
        failure = future.exception()
        if failure is not None:
            values.append(failure)
            continue
        try:
            values.append(awaitable.make(future.result()))
        except Exception as made_error:
            values.append(made_error)
    return values


def execute_plan(
    executor: "Executor[Any]", plan: ObjectPlan
) -> "dict[str, Any] | None | Awaitable[dict[str, Any] | None]":
    """The data of a planned execution, or None when it failed (graphql-core answers it)."""
    run = _Run(executor)
    data = plan.execute(run, executor.root_value, None)
    if not run.pending:
        return None if run.failed else data

    async def settled() -> dict[str, Any] | None:
        await run.settle()
        return None if run.failed else data

    return settled()


def same_answers(
    planned: tuple[Any, Iterable[GraphQLError] | None],
    ordinary: tuple[Any, Iterable[GraphQLError] | None],
) -> bool:
    def dump(answer: tuple[Any, Iterable[GraphQLError] | None]) -> bytes:
        data, errors = answer
        return orjson.dumps(
            {"data": data, "errors": [error.formatted for error in errors or ()]},
            default=repr,
        )

    return dump(planned) == dump(ordinary)
