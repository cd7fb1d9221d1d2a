"""Query documents for the differential test of the executors (tests/test_execution_corpus.py).

Three sources: documents generated from the schema itself (every root query field, selected to
a bounded depth, with aliases, fragments, directives, and good and bad arguments), the search
page of bench/search_sql.py with its mix of searches, and the query documents written in the
test suite's own source (tests/*.py string literals).
"""

import ast
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
    visit,
)
from strawberry.relay import to_base64

from bench import documents as bench_documents
from bench.search_sql import CITIES, QUERY, searches
from schema.limits import DocumentLimits, query_cost

TESTS = Path(__file__).parent


@dataclass(frozen=True)
class Case:
    """One document to compare, with its variables."""

    source: str
    name: str
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None

    @property
    def field(self) -> str:
        """The root field a generated document is about."""
        return self.name.partition(":")[0]


@dataclass
class Values:
    """What the seeded data offers arguments: global ids by type, and a few plain values."""

    ids: dict[str, list[str]]
    today: date
    city: str
    share_tokens: list[str] = field(default_factory=list)
    audit_actions: list[str] = field(default_factory=list)


OMIT = object()
# Argument names ending in "Id" whose stem is not the type's name.
_ID_TYPES = {"guest": "User", "host": "User", "actor": "User", "thread": "MessageThread"}
# Wrappers that add levels to a document without adding objects: not counted in its depth.
_WRAPPERS = ("Connection", "Edge")


def _unwrap_input(type_: GraphQLInputType) -> tuple[GraphQLInputType, bool]:
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, True
    return type_, False


class Generator:
    """Documents over ``schema`` whose arguments ``values`` fills; deterministic for a seed."""

    def __init__(
        self, schema: GraphQLSchema, values: Values, seed: int = 16, max_depth: int = 3
    ) -> None:
        self.schema = schema
        self.values = values
        self.rng = random.Random(seed)  # noqa: S311 (a repeatable corpus, not a secret)
        self.max_depth = max_depth
        self.max_cost = DocumentLimits().max_cost
        self.uncovered: list[str] = []

    # Argument values -------------------------------------------------------------------

    def _id_type(self, field_name: str, arg_name: str, field_type: GraphQLNamedType) -> str | None:
        if arg_name == "id":
            if field_name == "node":
                return None  # any type
            return field_type.name
        stem = arg_name[: -len("Id")]
        return _ID_TYPES.get(stem, stem[:1].upper() + stem[1:])

    def _good_id(self, type_name: str | None) -> str:
        if type_name is None:
            everything = sorted({i for ids in self.values.ids.values() for i in ids})
            return self.rng.choice(everything)
        ids = self.values.ids.get(type_name)
        if not ids:
            # Nothing of the kind in the data: the id of one that does not exist.
            return to_base64(type_name, 987_654)
        return self.rng.choice(ids)

    def good_value(
        self,
        arg_name: str,
        type_: GraphQLInputType,
        field_name: str = "",
        field_type: GraphQLNamedType | None = None,
        required: bool = True,
    ) -> Any:
        inner, non_null = _unwrap_input(type_)
        if not non_null and not required and self.rng.random() < 0.4:
            return OMIT
        today = self.values.today
        if isinstance(inner, GraphQLList):
            item = self.good_value(arg_name, inner.of_type, field_name, field_type)
            return [] if item is OMIT else [item]
        if isinstance(inner, GraphQLEnumType):
            return self.rng.choice(sorted(inner.values))
        if isinstance(inner, GraphQLInputObjectType):
            return self._good_input(inner)
        assert isinstance(inner, GraphQLScalarType)
        name = inner.name
        if name == "ID":
            assert field_type is not None
            return self._good_id(self._id_type(field_name, arg_name, field_type))
        if name == "Date":
            if arg_name in ("from", "checkIn"):
                return (today + timedelta(days=self.rng.choice([-40, 1, 5]))).isoformat()
            return (today + timedelta(days=self.rng.choice([6, 30]))).isoformat()
        if name == "Int":
            if arg_name == "first":
                return self.rng.choice([1, 2, 3])
            if arg_name == "guests":
                return 2
            return 1
        if name == "Boolean":
            return self.rng.random() < 0.5
        if name == "Decimal":
            return self.rng.choice(["40", "150.50"])
        if name == "String":
            if arg_name == "after":
                return OMIT  # a cursor comes from a page: documents of the test suite walk them
            if arg_name == "token":
                return self.rng.choice(self.values.share_tokens or ["no-such-token"])
            if arg_name == "action":
                return self.rng.choice(self.values.audit_actions or ["listing.suspend"])
            if arg_name in ("to", "currency"):
                return self.rng.choice(["USD", "EUR", "GBP"])
            if arg_name == "location":
                return self.values.city
            if arg_name == "search":
                return self.rng.choice(["ana", "example.com", "Silva"])
            return "x"
        if name == "Float":
            return 1.5
        self.uncovered.append(f"argument {arg_name} of scalar type {name}")
        return OMIT

    def _good_input(self, type_: GraphQLInputObjectType) -> dict[str, Any]:
        if type_.name == "ListingFilter":
            return self._search_filter()
        made: dict[str, Any] = {}
        for name, input_field in type_.fields.items():
            required = isinstance(input_field.type, GraphQLNonNull)
            value = self.good_value(name, input_field.type, required=required)
            if value is not OMIT:
                made[name] = value
        return made

    def _search_filter(self) -> dict[str, Any]:
        today = self.values.today
        check_in = today + timedelta(days=self.rng.choice([2, 10, 40]))
        lat, lng = CITIES.get(self.values.city, (38.7223, -9.1393))
        return self.rng.choice(
            [
                {"location": self.values.city},
                {
                    "location": self.values.city,
                    "checkIn": check_in.isoformat(),
                    "checkOut": (check_in + timedelta(days=3)).isoformat(),
                    "guests": 2,
                },
                {
                    "near": {"latitude": lat, "longitude": lng, "radiusKm": 15},
                    "minPrice": "40",
                    "maxPrice": "200",
                    "currency": "EUR",
                },
                {"amenities": ["wifi"], "propertyTypes": ["ENTIRE_PLACE"], "instantBook": True},
                {},
            ]
        )

    def bad_values(
        self, arg_name: str, type_: GraphQLInputType, field_name: str, field_type: GraphQLNamedType
    ) -> list[tuple[str, Any]]:
        """Values of the argument that the API refuses or finds nothing for, each named."""
        inner, _ = _unwrap_input(type_)
        today = self.values.today
        if isinstance(inner, GraphQLEnumType):
            return [("unknown enum value", "NOT_A_VALUE")]
        if isinstance(inner, GraphQLInputObjectType):
            if inner.name == "ListingFilter":
                return [
                    ("dates reversed", {"checkIn": today.isoformat(), "checkOut": "2020-01-01"}),
                    ("negative price", {"minPrice": "-5", "currency": "EUR"}),
                    ("unknown currency", {"minPrice": "5", "currency": "ZZZ"}),
                    ("unknown field", {"nowhere": True}),
                ]
            return []
        if not isinstance(inner, GraphQLScalarType):
            return []
        if inner.name == "ID":
            type_name = self._id_type(field_name, arg_name, field_type) or "Listing"
            other = "Listing" if type_name != "Listing" else "User"
            return [
                ("malformed id", "not-an-id"),
                ("missing id", to_base64(type_name, 987_654)),
                ("id of another type", self._good_id(other)),
            ]
        if inner.name == "Int" and arg_name == "first":
            return [("negative first", -1), ("huge first", 10_000)]
        if inner.name == "Int":
            return [("zero", 0), ("out of Int range", 2**40)]
        if inner.name == "Date":
            return [("not a date", "2027-02-30"), ("far date", "9999-12-31")]
        if inner.name == "String" and arg_name == "after":
            return [("garbage cursor", "garbage")]
        if inner.name == "String" and arg_name in ("to", "currency"):
            return [("unknown currency", "ZZZ")]
        if inner.name == "String":
            return [("empty string", ""), ("unknown string", "NO_SUCH_THING")]
        return []

    # Selections ------------------------------------------------------------------------

    def _literal(self, value: Any, type_: GraphQLInputType) -> str:
        """A variable's JSON value written as a literal of ``type_``."""
        inner, _ = _unwrap_input(type_)
        if value is None:
            return "null"
        if isinstance(inner, GraphQLList):
            items = value if isinstance(value, list) else [value]
            return "[" + ", ".join(self._literal(item, inner.of_type) for item in items) + "]"
        if isinstance(inner, GraphQLInputObjectType):
            return (
                "{"
                + ", ".join(
                    f"{name}: {self._literal(item, inner.fields[name].type)}"
                    for name, item in value.items()
                    if name in inner.fields
                )
                + "}"
            )
        if isinstance(inner, GraphQLEnumType) or isinstance(value, bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        return json.dumps(value)

    def _nested_args(self, field_name: str, definition: GraphQLField) -> str:
        parts = []
        for arg_name, arg in definition.args.items():
            value = self.good_value(
                arg_name,
                arg.type,
                field_name,
                get_named_type(definition.type),
                # Pages of two or three, and a week of calendar, keep documents quick.
                required=isinstance(arg.type, GraphQLNonNull) or arg_name in ("from", "first"),
            )
            if value is OMIT:
                continue
            if get_named_type(arg.type).name == "Date":
                days = 8 if arg_name == "to" else 1
                value = (self.values.today + timedelta(days=days)).isoformat()
            parts.append(f"{arg_name}: {self._literal(value, arg.type)}")
        return f"({', '.join(parts)})" if parts else ""

    def selection(
        self,
        type_: GraphQLNamedType,
        depth: int,
        *,
        subset: bool = False,
        decorate: Callable[[str], str] | None = None,
        fragments: dict[str, str] | None = None,
        alias: str = "",
        clashing: frozenset[str] = frozenset(),
    ) -> str:
        """Fields of ``type_``: every leaf, and objects while ``depth`` lasts; ``alias``
        prefixes the names of the top level's fields (fragments on several types of one
        interface may not answer one name with different types)."""
        if isinstance(type_, GraphQLInterfaceType):
            possible_types = self.schema.get_possible_types(type_)
            clashing = self._clashing_fields(possible_types)
            fragments_on = []
            for possible in possible_types:
                if self.rng.random() < 0.35:
                    inner = self.selection(
                        possible, depth, subset=True, alias=possible.name, clashing=clashing
                    )
                    fragments_on.append(f"... on {possible.name} {{ {inner} }}")
            return f"__typename id {' '.join(fragments_on)}"
        assert isinstance(type_, GraphQLObjectType)
        parts: list[str] = []
        for name, definition in type_.fields.items():
            if subset and self.rng.random() < 0.5:
                continue
            named = get_named_type(definition.type)
            args = self._nested_args(name, definition) if definition.args else ""
            aliased = alias and name in clashing
            head = f"{alias}_{name}: {name}{args}" if aliased else f"{name}{args}"
            head = decorate(head) if decorate else head
            if is_leaf_type(named):
                parts.append(head)
                continue
            counts = not any(named.name.endswith(w) for w in _WRAPPERS)
            next_depth = depth - 1 if counts else depth
            if next_depth < 0:
                continue
            if fragments is not None and self.rng.random() < 0.3:
                fragment = f"F{len(fragments)}_{named.name}"
                fragments[fragment] = (
                    f"fragment {fragment} on {named.name} "
                    f"{{ {self.selection(named, next_depth, subset=True)} }}"
                )
                parts.append(f"{head} {{ ...{fragment} __typename }}")
            else:
                inner = self.selection(
                    named, next_depth, subset=subset, decorate=decorate, fragments=fragments
                )
                parts.append(f"{head} {{ {inner} }}")
        if not parts:
            parts.append("__typename")
        return " ".join(parts)

    @staticmethod
    def _clashing_fields(types: Sequence[GraphQLObjectType]) -> frozenset[str]:
        """Names that fragments on several of ``types`` may not share in one place: of
        different types, or objects whose selections (and their arguments) differ."""
        seen: dict[str, set[str]] = {}
        for type_ in types:
            for name, definition in type_.fields.items():
                seen.setdefault(name, set()).add(str(definition.type))

        def objects_in_several(name: str) -> bool:
            having = [t for t in types if name in t.fields]
            return len(having) > 1 and not is_leaf_type(get_named_type(having[0].fields[name].type))

        return frozenset(
            name for name, kinds in seen.items() if len(kinds) > 1 or objects_in_several(name)
        )

    # Documents -------------------------------------------------------------------------

    def _root_args(
        self, field_name: str, definition: GraphQLField, bad: tuple[str, Any] | None = None
    ) -> tuple[list[str], list[str], dict[str, Any]]:
        """(variable definitions, arguments, variables) of one root field, all as variables."""
        definitions, arguments, variables = [], [], {}
        named = get_named_type(definition.type)
        for arg_name, arg in definition.args.items():
            required = isinstance(arg.type, GraphQLNonNull)
            if bad is not None and bad[0] == arg_name:
                value = bad[1]
            else:
                value = self.good_value(arg_name, arg.type, field_name, named, required=required)
            if value is OMIT:
                continue
            definitions.append(f"${arg_name}: {arg.type}")
            arguments.append(f"{arg_name}: ${arg_name}")
            variables[arg_name] = value
        return definitions, arguments, variables

    def _literal_args(self, field_name: str, definition: GraphQLField) -> str:
        named = get_named_type(definition.type)
        parts = []
        for arg_name, arg in definition.args.items():
            required = isinstance(arg.type, GraphQLNonNull)
            value = self.good_value(arg_name, arg.type, field_name, named, required=required)
            if value is not OMIT:
                parts.append(f"{arg_name}: {self._literal(value, arg.type)}")
        return f"({', '.join(parts)})" if parts else ""

    def _affordable(self, query: str, variables: dict[str, Any]) -> bool:
        """Within the cost limit with room to spare, so the document is executed, not refused."""
        return query_cost(self.schema, parse(query), None, variables) <= self.max_cost // 2

    def _body(self, type_: GraphQLNamedType, depth: int, **options: Any) -> str:
        if is_leaf_type(type_):
            return ""
        return f" {{ {self.selection(type_, depth, **options)} }}"

    def for_field(self, field_name: str, definition: GraphQLField) -> Iterator[Case]:
        named = get_named_type(definition.type)
        op = f"Q_{field_name}"

        def case(kind: str, query: str, variables: dict[str, Any] | None = None) -> Case:
            return Case("generated", f"{field_name}: {kind}", query, variables or None, None)

        # Every leaf and object to the full depth, arguments from variables.
        defs, args, variables = self._root_args(field_name, definition)
        head = f"query {op}({', '.join(defs)})" if defs else f"query {op}"
        call = f"{field_name}({', '.join(args)})" if args else field_name
        for depth in range(self.max_depth, -1, -1):
            query = f"{head} {{ {call}{self._body(named, depth)} }}"
            if self._affordable(query, variables):
                break
        yield case("full", query, variables)

        # Literal arguments, aliases of the same field with different arguments, __typename.
        first = f"a: {field_name}{self._literal_args(field_name, definition)}"
        second = f"b: {field_name}{self._literal_args(field_name, definition)}"
        yield case(
            "aliases and literals",
            f"{{ __typename {first}{self._body(named, 2, subset=True)} "
            f"{second}{self._body(named, 1, subset=True)} }}",
        )

        # @skip / @include on random fields, each way.
        if not is_leaf_type(named):

            def decorate(text: str) -> str:
                roll = self.rng.random()
                if roll < 0.2:
                    return f"{text} @skip(if: $s)"
                if roll < 0.4:
                    return f"{text} @include(if: $i)"
                return text

            defs, args, variables = self._root_args(field_name, definition)
            call = f"{field_name}({', '.join(args)})" if args else field_name
            body = self._body(named, 2, subset=True, decorate=decorate)
            query = (
                f"query {op}({', '.join([*defs, '$s: Boolean!', '$i: Boolean!'])}) "
                f"{{ {call}{body} __typename @include(if: $i) t: __typename @skip(if: $s) }}"
            )
            for skip in (True, False):
                yield case(
                    f"directives skip={skip}", query, {**variables, "s": skip, "i": not skip}
                )

            # Named fragments, spread beside inline fragments.
            fragments: dict[str, str] = {}
            defs, args, variables = self._root_args(field_name, definition)
            call = f"{field_name}({', '.join(args)})" if args else field_name
            inner = self.selection(named, 2, subset=True, fragments=fragments)
            head = f"query {op}({', '.join(defs)})" if defs else f"query {op}"
            query = (
                f"{head} {{ {call} {{ ... on {named.name} {{ {inner} }} ...Top }} }} "
                f"fragment Top on {named.name} {{ __typename }} " + " ".join(fragments.values())
            )
            yield case("fragments", query, variables)

        # Each argument given a value the API refuses or finds nothing for.
        for arg_name, arg in definition.args.items():
            for label, value in self.bad_values(arg_name, arg.type, field_name, named):
                defs, args, variables = self._root_args(field_name, definition, (arg_name, value))
                call = f"{field_name}({', '.join(args)})"
                yield case(
                    f"{arg_name}: {label}",
                    f"query {op}({', '.join(defs)}) {{ {call}{self._body(named, 1)} }}",
                    variables,
                )

    def next_page(self, field_name: str, variables: dict[str, Any] | None, cursor: str) -> Case:
        """The page after ``cursor`` of a root connection, with the first page's arguments."""
        query = self.schema.query_type
        assert query is not None
        definition = query.fields[field_name]
        given = {**(variables or {}), "after": cursor, "first": 1}
        defs = [f"${name}: {definition.args[name].type}" for name in given]
        args = [f"{name}: ${name}" for name in given]
        body = (
            "totalCount edges { cursor node { __typename id } } "
            "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
        )
        call = f"{field_name}({', '.join(args)})"
        query_text = f"query Q_{field_name}({', '.join(defs)}) {{ {call} {{ {body} }} }}"
        return Case("generated", f"{field_name}: next page", query_text, given)

    def corpus(self) -> list[Case]:
        query = self.schema.query_type
        assert query is not None
        made: list[Case] = []
        for field_name, definition in query.fields.items():
            made.extend(self.for_field(field_name, definition))
        return made


def search_cases(city: str, today: date) -> list[Case]:
    """bench/search_sql.py's search page with its mix of searches, moved to our city and days."""
    made = []
    for index, search in enumerate(searches(16)):
        text = json.dumps(search.filter)
        for bench_city in CITIES:
            text = text.replace(f'"{bench_city}"', json.dumps(city))
        filter_ = json.loads(text)
        for key in ("checkIn", "checkOut"):
            if key in filter_:
                moved = date.fromisoformat(filter_[key]) - date.today() + today
                filter_[key] = moved.isoformat()
        made.append(
            Case(
                "bench/search_sql.py",
                f"{search.kind} #{index}",
                QUERY,
                {"filter": filter_, "sort": search.sort, "after": None},
                "Search",
            )
        )
    return made


def hostile_cases() -> list[Case]:
    """bench/documents.py's worst documents (most refused before they run, some run)."""
    return [
        Case("bench/documents.py", name, query)
        for name, query in bench_documents.documents().items()
    ]


def _string_literals(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of the module's string constants, f-strings evaluated where they can be."""
    tree = ast.parse(path.read_text())
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            text = _evaluate(node.value, names)
            if isinstance(target, ast.Name) and text is not None:
                names[target.id] = text
                yield target.id, text
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield f"line {node.lineno}", node.value


def _evaluate(node: ast.expr, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = _evaluate(value.value, names)
                if inner is None:
                    return None
                parts.append(inner)
        return "".join(parts)
    return None


def _imported_names(path: Path) -> dict[str, str]:
    """String constants a test module imports from the tests' helper modules."""
    found: dict[str, str] = {}
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests."):
            helper = TESTS / (node.module.removeprefix("tests.") + ".py")
            if helper.exists():
                constants = dict(_string_literals(helper))
                for alias in node.names:
                    if alias.name in constants:
                        found[alias.name] = constants[alias.name]
    return found


def suite_documents(
    schema: GraphQLSchema, skipped: Counter[str] | None = None
) -> dict[str, tuple[str, str]]:
    """Query documents of the test suite: text -> (file, constant or line), deduplicated;
    ``skipped`` counts the GraphQL documents left out, by why."""
    found: dict[str, tuple[str, str]] = {}
    skipped = Counter() if skipped is None else skipped
    for path in sorted(TESTS.glob("*.py")):
        if path.name in ("query_corpus.py", "test_execution_corpus.py"):
            continue
        candidates = list(_string_literals(path))
        for name, text in candidates:
            if "{" not in text or text in found:
                continue
            try:
                document = parse(text)
            except GraphQLSyntaxError:
                continue
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if not operations:
                continue
            if any(o.operation != OperationType.QUERY for o in operations):
                skipped["mutation or subscription"] += 1
                continue
            if validate(schema, document):
                # A test of refused documents (or of an old schema): validation is shared.
                skipped["invalid against the schema"] += 1
                continue
            found[text] = (path.name, name)
    return found


def variables_of(document_text: str) -> list[VariableDefinitionNode]:
    document = parse(document_text)
    return [
        variable
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        for variable in definition.variable_definitions or ()
    ]


def suite_cases(schema: GraphQLSchema, generator: Generator) -> tuple[list[Case], Counter[str]]:
    """The suite's query documents with variables filled from our data; what was left out."""
    made: list[Case] = []
    skipped: Counter[str] = Counter()
    for text, (file, name) in suite_documents(schema, skipped).items():
        variables: dict[str, Any] = {}
        fillable = True
        document = parse(text)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        uses = _variable_uses(operation, schema)
        for variable in operation.variable_definitions or ():
            var_name = variable.variable.name.value
            where = uses.get(var_name)
            if where is None:
                fillable = False
                break
            field_name, arg_name, arg_type, field_type = where
            value = generator.good_value(arg_name, arg_type, field_name, field_type)
            if value is OMIT:
                if isinstance(arg_type, GraphQLNonNull):
                    fillable = False
                    break
                continue
            variables[var_name] = value
        if not fillable:
            skipped["variables we cannot fill"] += 1
            continue
        made.append(Case(f"tests/{file}", name, text, variables or None, None))
    return made, skipped


def _variable_uses(
    operation: OperationDefinitionNode, schema: GraphQLSchema
) -> dict[str, tuple[str, str, GraphQLInputType, GraphQLNamedType]]:
    """Each variable's first use as an argument or an input field: (field, argument or input
    field name, its type, the field's type)."""
    uses: dict[str, tuple[str, str, GraphQLInputType, GraphQLNamedType]] = {}
    info = TypeInfo(schema)
    input_fields: list[str] = []

    class Uses(Visitor):
        def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
            input_fields.append(node.name.value)

        def leave_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
            input_fields.pop()

        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            input_fields.clear()

        def enter_variable(self, node: VariableNode, key: Any, parent: Any, *_: Any) -> None:
            field_def = info.get_field_def()
            input_type = info.get_input_type()
            name = node.name.value
            if field_def is None or input_type is None or name in uses:
                return
            if input_fields:
                arg_name = input_fields[-1]
            elif isinstance(parent, ArgumentNode):
                arg_name = parent.name.value  # of the field, or of @skip/@include
            else:
                return  # inside a list: named by the argument that holds it
            field_name = next(
                (
                    n
                    for n, f in getattr(info.get_parent_type(), "fields", {}).items()
                    if f is field_def
                ),
                "",
            )
            uses[name] = (field_name, arg_name, input_type, get_named_type(field_def.type))

    visit(operation, TypeInfoVisitor(info, Uses()))
    return uses
