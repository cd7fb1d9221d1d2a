"""What one GraphQL document may ask for, each measured in a single pass over it.

Depth, aliases and cost are measured on each definition once; a fragment's measure is then
remembered, so a fragment spread a billion times over (two spreads of the next one, thirty
levels down) costs one visit. strawberry's own depth and alias rules walk every path through
the fragments instead: that document pinned a process for minutes.

Cost: every field costs 1, and what is selected under a connection counts `first` times
(clamped to the largest page: a bigger one is refused by the resolver, with a clearer message),
under a list as many times as the list can hold. Introspection fields cost 1 each: their
fan-out is bounded by the schema and by graphql-core's introspection depth rule.
"""

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

from services.analytics import MAX_ANALYTICS_MONTHS, MAX_PRICED_CURRENCIES
from services.calendar_imports import IMPORT_DAYS, MAX_IMPORTS_PER_LISTING
from services.disputes import MAX_NOTES as MAX_DISPUTE_NOTES
from services.listings import MAX_AMENITIES, MAX_CALENDAR_NIGHTS, MAX_PHOTOS
from services.money import known_currencies
from services.platform_metrics import MAX_DAYS as PLATFORM_METRICS_MAX_DAYS
from services.platform_settings import MAX_COUNTRIES as MAX_TAX_COUNTRIES
from services.platform_settings import SETTINGS as PLATFORM_SETTINGS
from services.receipts import MAX_LINES as MAX_RECEIPT_LINES
from services.search import MAX_PAGE_SIZE

# The most items each list field can hold. Lists of a connection count once: the connection
# already counted `first`. A test keeps this table complete.
LIST_SIZES: Mapping[str, int] = {
    "Query.amenities": 200,
    "Listing.amenities": MAX_AMENITIES,
    "Listing.photos": MAX_PHOTOS,
    "Listing.calendar": MAX_CALENDAR_NIGHTS,
    "Listing.calendarImports": MAX_IMPORTS_PER_LISTING,
    # Runs of nights within the two years a feed is read for: at most one night in two.
    "CalendarImport.conflicts": IMPORT_DAYS // 2,
    "ListingConnection.edges": 1,
    "BookingConnection.edges": 1,
    "PaymentConnection.edges": 1,
    "ProviderEventConnection.edges": 1,
    "Receipt.lines": MAX_RECEIPT_LINES,
    # One per cancellation or shorter stay: no hard bound, a handful in practice.
    "Receipt.refunds": 10,
    "PayoutConnection.edges": 1,
    "ReviewConnection.edges": 1,
    "MessageThreadConnection.edges": 1,
    "MessageConnection.edges": 1,
    "MessageThread.participants": 2,
    "NotificationConnection.edges": 1,
    "AuditEntryConnection.edges": 1,
    "UserConnection.edges": 1,
    "DisputeConnection.edges": 1,
    "Dispute.notes": MAX_DISPUTE_NOTES,
    "WishlistConnection.edges": 1,
    "SavedPlaceConnection.edges": 1,
    # One entry per currency a host was paid in: at most every currency there is.
    "Earnings.byCurrency": len(known_currencies()),
    "HostAnalytics.months": MAX_ANALYTICS_MONTHS,
    "HostAnalyticsPeriod.byCurrency": MAX_PRICED_CURRENCIES,
    "PlatformMetrics.days": PLATFORM_METRICS_MAX_DAYS,
    # One entry per currency booked in on the day: no hard bound below every currency there
    # is, a handful in practice (and a year of days at that bound would cost too much).
    "PlatformDay.grossBookingValue": 10,
    "PlatformSettings.taxPercentByCountry": MAX_TAX_COUNTRIES,
    "PlatformSettings.changed": len(PLATFORM_SETTINGS),
}
UNLISTED_LIST_SIZE = 100


@dataclass(frozen=True)
class DocumentLimits:
    max_length: int = 50_000
    max_tokens: int = 2_000
    max_depth: int = 12
    max_aliases: int = 30
    max_cost: int = 100_000


@dataclass
class _Local:
    """What a definition holds itself, and the fragments it spreads (each with its weight:
    the depth it is spread at, or how many times it counts)."""

    value: int = 0
    spreads: list[tuple[int, str]] = field(default_factory=list)


Combine = Callable[[_Local, Mapping[str, int]], int]


def _add(local: _Local, totals: Mapping[str, int]) -> int:
    return local.value + sum(weight * totals.get(name, 0) for weight, name in local.spreads)


def _deepest(local: _Local, totals: Mapping[str, int]) -> int:
    return max([local.value, *(offset + totals.get(name, 0) for offset, name in local.spreads)])


def _fragment_totals(locals_: Mapping[str, _Local], combine: Combine) -> dict[str, int]:
    """Each fragment's total, every fragment measured once (depth first, without recursion,
    so a long chain of fragments cannot exhaust the stack). A spread that closes a cycle
    counts nothing: graphql-core refuses such a document anyway."""
    totals: dict[str, int] = {}
    on_path: set[str] = set()
    for start in locals_:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in totals:
                stack.pop()
                continue
            if name not in on_path:
                on_path.add(name)
                waiting = [
                    spread
                    for _, spread in locals_[name].spreads
                    if spread in locals_ and spread not in totals and spread not in on_path
                ]
                if waiting:
                    stack.extend(waiting)
                    continue
            totals[name] = combine(locals_[name], totals)
            on_path.discard(name)
            stack.pop()
    return totals


def _fragments(definitions: Iterable[Any]) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(definitions: Iterable[Any]) -> list[OperationDefinitionNode]:
    return [d for d in definitions if isinstance(d, OperationDefinitionNode)]


# Depth and aliases: what the validation rule checks.


def _shape(selection_set: SelectionSetNode) -> tuple[_Local, _Local]:
    """Depth as strawberry counted it (a field with a selection is one level; introspection
    fields none), and aliases (every one, introspection included)."""
    depth, aliases = _Local(), _Local()

    def visit(selections: SelectionSetNode, level: int, counting_depth: bool) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    aliases.value += 1
                if selection.selection_set is not None:
                    counted = counting_depth and not selection.name.value.startswith("__")
                    if counted:
                        depth.value = max(depth.value, level + 1)
                    visit(selection.selection_set, level + 1, counted)
            elif isinstance(selection, InlineFragmentNode):
                visit(selection.selection_set, level, counting_depth)
            elif isinstance(selection, FragmentSpreadNode):
                aliases.spreads.append((1, selection.name.value))
                if counting_depth:
                    depth.spreads.append((level, selection.name.value))

    visit(selection_set, 0, True)
    return depth, aliases


def create_shape_rule(limits: DocumentLimits) -> type[ValidationRule]:
    """A validation rule refusing operations deeper than ``max_depth`` and documents with
    more than ``max_aliases`` aliases (counted as many times as their fragments are spread)."""

    class ShapeLimits(ValidationRule):
        def enter_document(self, node: Any, *_args: Any) -> Any:
            fragments = _fragments(node.definitions)
            depths, aliases = {}, {}
            for name, fragment in fragments.items():
                depths[name], aliases[name] = _shape(fragment.selection_set)
            fragment_depth = _fragment_totals(depths, _deepest)
            fragment_aliases = _fragment_totals(aliases, _add)
            alias_count = 0
            for operation in _operations(node.definitions):
                depth, own_aliases = _shape(operation.selection_set)
                alias_count += _add(own_aliases, fragment_aliases)
                if _deepest(depth, fragment_depth) > limits.max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    self.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                            operation,
                        )
                    )
            if alias_count > limits.max_aliases:
                self.report_error(
                    GraphQLError(
                        f"The document has {alias_count} aliases; "
                        f"at most {limits.max_aliases} are allowed."
                    )
                )
            return self.BREAK

    return ShapeLimits


# Cost: checked before execution, with the request's variables.


class _CostMeter:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.variables = variables
        # The variables whose values the cost depends on: those given as a `first`.
        self.read: set[str] = set()
        self.variable_defaults = {
            definition.variable.name.value: definition.default_value
            for definition in operation.variable_definitions or ()
        }

    def local(self, selection_set: SelectionSetNode, parent: Any) -> _Local:
        cost = _Local()
        # A method, not a nested function calling itself: that would be a reference cycle
        # for the garbage collector to free after every document.
        self._visit(cost, selection_set, parent, 1)
        return cost

    def _visit(self, cost: _Local, selections: SelectionSetNode, parent: Any, times: int) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                cost.value += times
                if selection.selection_set is not None:
                    definition = _field(parent, selection.name.value)
                    inner = get_named_type(definition.type) if definition else None
                    multiplier = self.multiplier(parent, selection, definition)
                    self._visit(cost, selection.selection_set, inner, times * multiplier)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                self._visit(cost, selection.selection_set, inner, times)
            elif isinstance(selection, FragmentSpreadNode):
                cost.spreads.append((times, selection.name.value))

    def multiplier(self, parent: Any, node: FieldNode, definition: Any) -> int:
        if definition is None or parent.name.startswith("__") or node.name.value.startswith("__"):
            return 1
        if "first" in definition.args:
            first = self._argument(node, "first", definition.args["first"].default_value)
            if isinstance(first, int) and not isinstance(first, bool):
                return max(0, min(first, MAX_PAGE_SIZE))
            return MAX_PAGE_SIZE
        if is_list_type(get_nullable_type(definition.type)):
            return LIST_SIZES.get(f"{parent.name}.{node.name.value}", UNLISTED_LIST_SIZE)
        return 1

    def _argument(self, node: FieldNode, name: str, default: Any) -> Any:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                self.read.add(value.name.value)
                given = self.variables.get(value.name.value)
                if given is not None:
                    return given
                declared = self.variable_defaults.get(value.name.value)
                if isinstance(declared, IntValueNode):
                    return int(declared.value)
            return default
        return default


def _field(parent: Any, name: str) -> Any:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        return parent.fields.get(name)
    return None


# Costs of the documents run lately: the same few are asked again and again, and a cost changes
# only with the variables its `first` arguments read. Each entry keeps its schema and document:
# their ids are its key, and must not be reused meanwhile.
_KnownCosts = tuple[GraphQLSchema, DocumentNode, tuple[str, ...], dict[tuple[Any, ...], int]]
_known_costs: "OrderedDict[tuple[int, int, str | None], _KnownCosts]" = OrderedDict()
MAX_KNOWN_DOCUMENTS = 256
MAX_KNOWN_VARIANTS = 16
_PLAIN_VALUES = (int, str, float, bool, type(None))


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """What running ``operation_name`` (or the only operation) of ``document`` costs."""
    if document is None:
        return 0
    variables = variables or {}
    key = (id(schema), id(document), operation_name)
    known = _known_costs.get(key)
    if known is not None and known[0] is schema and known[1] is document:
        _known_costs.move_to_end(key)
        values = _typed(variables, known[2])
        if values is not None:
            cost = known[3].get(values)
            if cost is None:
                cost = _cost(schema, document, operation_name, variables)[0]
                if len(known[3]) < MAX_KNOWN_VARIANTS:
                    known[3][values] = cost
            return cost
        return _cost(schema, document, operation_name, variables)[0]
    cost, read = _cost(schema, document, operation_name, variables)
    values = _typed(variables, read)
    costs = {values: cost} if values is not None else {}
    _known_costs[key] = (schema, document, read, costs)
    while len(_known_costs) > MAX_KNOWN_DOCUMENTS:
        _known_costs.popitem(last=False)
    return cost


def _typed(variables: Mapping[str, Any], names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The values of ``names`` with their types (True is not 1 here), or None when one is not
    a plain value to key a cost by."""
    values = tuple((type(value), value) for value in map(variables.get, names))
    return values if all(isinstance(value, _PLAIN_VALUES) for _, value in values) else None


def _cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
) -> tuple[int, tuple[str, ...]]:
    """The cost of the operation, and the variables it read (sorted)."""
    operations = _operations(document.definitions)
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 0, ()  # graphql-core refuses to run it
    operation = operations[0]
    meter = _CostMeter(schema, operation, variables)
    locals_ = {
        name: meter.local(
            fragment.selection_set, schema.get_type(fragment.type_condition.name.value)
        )
        for name, fragment in _fragments(document.definitions).items()
    }
    root = schema.get_root_type(operation.operation)
    cost = _add(meter.local(operation.selection_set, root), _fragment_totals(locals_, _add))
    return cost, tuple(sorted(meter.read))
