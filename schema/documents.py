"""GraphQL documents: each distinct one parsed and validated once, off the event loop, and
refused before it runs when it asks for too much.

Parsing and validating are pure Python: a 4,000-token document takes tens of milliseconds on
a small machine. They run on one worker thread, so the event loop keeps answering other
requests (and health checks) while a big document is being read; the thread switches away
every few milliseconds. A document that passed before is only parsed again.
"""

import asyncio
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    ListValueNode,
    NameNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    Token,
    is_input_type,
    is_non_null_type,
    type_from_ast,
    validate,
)
from graphql.language.parser import Parser, nested_too_deeply_error
from graphql.utilities.validate_input_value import validate_input_value
from graphql.validation.rules import overlapping_fields_can_be_merged
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.limits import DocumentLimits, create_shape_rule, query_cost
from services.validation import has_control_characters

# Every control character but tab, line feed and carriage return is refused in any text: none
# that Roost keeps needs them, and PostgreSQL refuses NUL outright.
CONTROL_CHARACTERS_PROBLEM = "must not contain control characters"
# graphql-core stops comparing fields that share a response name past this budget. Its default
# (500,000) let one document of 180 fields hold validation for 240 ms here; at 10,000 the worst
# we built took 25 ms, and real documents spend little (GraphiQL's introspection 1, a page of
# nine fragments 120).
overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = 10_000
# A document that passed before is parsed again on the event loop when it is this short (a few
# milliseconds at most); a longer one goes back to the thread.
INLINE_PARSE_CHARS = 4_000
# Documents this short are kept parsed (16,000 characters of them: 25,000 objects at most).
KEPT_PARSED_CHARS = 1_000
_checked_in_this_request: ContextVar[tuple[str, "CheckedDocument"] | None] = ContextVar(
    "checked_in_this_request", default=None
)
# Coercing variables costs a couple of microseconds a value, on the event loop.
MAX_VARIABLE_VALUES = 5_000


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    document: DocumentNode | None  # None when it did not parse
    errors: tuple[GraphQLError, ...]  # why it cannot run; empty when it can


class _Recent(OrderedDict[str, Any]):
    """The most recently used entries, keyed by document text, up to ``budget`` characters."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.chars = 0

    def use(self, text: str) -> Any:
        value = self.get(text, _ABSENT)
        if value is not _ABSENT:
            self.move_to_end(text)
        return value

    def keep(self, text: str, value: Any) -> None:
        if text in self or len(text) > self.budget:
            return
        self[text] = value
        self.chars += len(text)
        while self.chars > self.budget:
            evicted, _ = self.popitem(last=False)
            self.chars -= len(evicted)


_ABSENT = object()


class Documents:
    """Checks documents, and remembers which texts passed: those are parsed again (on the event
    loop when short), never checked again. Documents that failed are not remembered: clients
    correct their mistakes, attackers send new ones.

    Only short documents are kept parsed, a few dozen. An AST is one or two objects a character,
    and every full garbage collection walks every object kept: 2 MB of cached documents made
    each one hold the event loop for a second. A text is one object; parsing a usual document
    again costs half a millisecond.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: DocumentLimits,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.rules = rules
        self._shape_rule = create_shape_rule(limits)
        self._valid = _Recent(budget=2_000_000)
        self._parsed = _Recent(budget=16_000)
        self._in_flight: dict[str, asyncio.Future[CheckedDocument]] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-documents")

    def refusal(
        self, document: DocumentNode | None, operation_name: str | None, variables: dict[str, Any]
    ) -> GraphQLError | None:
        """Why an operation that passed its document's checks may not run with these variables:
        too many values, control characters in a text, or a cost over the limit."""
        if _count_values(variables, MAX_VARIABLE_VALUES) > MAX_VARIABLE_VALUES:
            return bad_user_input(
                {"variables": f"must hold at most {MAX_VARIABLE_VALUES} values in all"}
            )
        problems: dict[str, str] = {}
        for name, value in variables.items():
            text_problems(value, "" if isinstance(value, dict) else name, problems)
        if problems:
            return bad_user_input(problems)
        limit = self.limits.max_cost
        cost = query_cost(self.schema, document, operation_name, variables)
        if cost > limit:
            return GraphQLError(
                f"This operation costs {cost}, over the limit of {limit}: ask for fewer "
                "items (a smaller `first`) or fewer fields.",
                extensions={"code": "GRAPHQL_VALIDATION_FAILED", "cost": cost, "maxCost": limit},
            )
        return None

    async def check(self, query: str) -> CheckedDocument:
        # A request may ask twice (the response cache looks before strawberry does).
        if (recent := _checked_in_this_request.get()) is not None and recent[0] == query:
            return recent[1]
        if (document := self._parsed.use(query)) is not _ABSENT:
            checked = CheckedDocument(document, ())
        elif self._valid.use(query) is not _ABSENT and len(query) <= INLINE_PARSE_CHARS:
            checked = CheckedDocument(self.parse(query), ())
        else:
            checked = await self._in_thread(query)
        if not checked.errors:
            self._valid.keep(query, None)
            if len(query) <= KEPT_PARSED_CHARS:
                self._parsed.keep(query, checked.document)
        _checked_in_this_request.set((query, checked))
        return checked

    async def _in_thread(self, query: str) -> CheckedDocument:
        # The same document sent many times at once is read once.
        pending = self._in_flight.get(query)
        if pending is None:
            work = self.parse_now if query in self._valid else self.check_now
            pending = asyncio.get_running_loop().run_in_executor(self._thread, work, query)
            self._in_flight[query] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(query, None))
        return await asyncio.shield(pending)

    def parse(self, query: str) -> DocumentNode:
        return parse_without_cycles(query, max_tokens=self.limits.max_tokens)

    def parse_now(self, query: str) -> CheckedDocument:
        """A document that passed its checks before: parsed again, not checked again."""
        return CheckedDocument(self.parse(query), ())

    def check_now(self, query: str) -> CheckedDocument:
        if len(query) > self.limits.max_length:
            return CheckedDocument(
                None,
                (
                    GraphQLError(
                        f"Syntax Error: the document is longer than "
                        f"{self.limits.max_length} characters.",
                        extensions={"code": "GRAPHQL_PARSE_FAILED"},
                    ),
                ),
            )
        try:
            document = self.parse(query)
        except GraphQLError as error:
            return CheckedDocument(None, (error,))
        # Our own limits first: a document over them is refused before graphql-core's rules,
        # which cost far more, spend anything on it.
        errors = validate(self.schema, document, (self._shape_rule,))
        if not errors:
            errors = validate_document(self.schema, document, self.rules)
        if not errors:
            errors = _literal_text_errors(document)
        return CheckedDocument(document, tuple(errors))


def parse_without_cycles(query: str, *, max_tokens: int) -> DocumentNode:
    """graphql-core's parse, leaving no reference cycle behind. Its tokens link back to the one
    before; unlinked, a document (or what a failed parse read) is freed as soon as nobody holds
    it, instead of waiting for a garbage collection: a full one over thousands of tokens held
    the event loop for 100 ms here while a flood of documents came in."""
    parser = Parser(query, max_tokens=max_tokens)
    try:
        try:
            return parser.parse_document()
        except RecursionError:
            pass
        raise nested_too_deeply_error(parser)
    finally:
        # The lexer's own attribute: the only way to the tokens read so far.
        token: Token | None = parser._lexer.token
        while token is not None:
            token.prev, token = None, token.prev


def text_problems(value: Any, path: str, problems: dict[str, str]) -> None:
    """Adds to ``problems`` each text in ``value`` (plain JSON) holding a control character,
    named by its path (``title``, ``address.city``, ``photos.2.caption``)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if has_control_characters(item, allow_newlines=True):
                problems.setdefault(where, CONTROL_CHARACTERS_PROBLEM)
        elif isinstance(item, dict):
            stack.extend((_join(where, key), v) for key, v in item.items())
        elif isinstance(item, list):
            stack.extend((_join(where, index), v) for index, v in enumerate(item))


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _literal(node: Any) -> Any:
    """The texts of a literal value, as plain JSON; anything else as None."""
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, ObjectValueNode):
        return {field.name.value: _literal(field.value) for field in node.fields}
    if isinstance(node, ListValueNode):
        return [_literal(item) for item in node.values]
    return None


def _arguments(document: DocumentNode) -> Iterator[Any]:
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        yield from getattr(node, "arguments", None) or ()
        for directive in getattr(node, "directives", None) or ():
            yield from directive.arguments or ()
        if (selection_set := getattr(node, "selection_set", None)) is not None:
            stack.extend(selection_set.selections)


def _literal_text_errors(document: DocumentNode) -> list[GraphQLError]:
    problems: dict[str, str] = {}
    for argument in _arguments(document):
        value = _literal(argument.value)
        # An input object is named by its fields, as the services name them.
        text_problems(value, "" if isinstance(value, dict) else argument.name.value, problems)
    return [bad_user_input(problems)] if problems else []


def bad_user_input(problems: Mapping[str, str]) -> GraphQLError:
    message = "; ".join(f"{field}: {problem}" for field, problem in problems.items())
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "fields": dict(problems)})


_NOT_NULL = re.compile(r"Expected value of non-null type '.*' not to be None\.", re.DOTALL)
_NOT_PROVIDED = re.compile(r"Expected a value of non-null type '.*' to be provided\.", re.DOTALL)
_NOT_OBJECT = re.compile(r"Expected value of type '.*' to be an object", re.DOTALL)
_MISSING = re.compile(r"Expected value of type '.*' to include required field '(\w+)'", re.DOTALL)
_UNKNOWN = re.compile(
    r"Expected value of type '(\w+)' not to include unknown field '(\w+)'", re.DOTALL
)
_CANNOT_REPRESENT = re.compile(r"(\w+ cannot represent [^:]*): ", re.DOTALL)


def _shape_problem(error: GraphQLError) -> tuple[list[str], str]:
    """A fault graphql-core found in a variable, as a field's problem in our words: its own
    messages end with a Python repr of the value (None, {'title': ...}). Answers the names of
    the fields below the reported path that the problem is about, and the problem."""
    cause = error.original_error
    if cause is not None and not isinstance(cause, GraphQLError):
        return [], str(cause)  # one of our scalars, which words its own problems
    message = str(cause) if cause is not None else error.message
    if found := _MISSING.match(message):
        return [found[1]], "is required"
    if found := _UNKNOWN.match(message):
        return [found[2]], f"is not a field of {found[1]}"
    if _NOT_NULL.match(message):
        return [], "must not be null"
    if _NOT_PROVIDED.match(message):
        return [], "is required"
    if _NOT_OBJECT.match(message):
        return [], "must be an object"
    if found := _CANNOT_REPRESENT.match(message):
        return [], found[1]
    return [], message


def variable_problems(
    schema: GraphQLSchema,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> dict[str, str]:
    """What is wrong with each variable, by field path (named as ``text_problems`` names them):
    graphql-core reports the same faults with the path only in its message."""
    operations = [
        d
        for d in (document.definitions if document else ())
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name and d.name.value == operation_name))
    ]
    if len(operations) != 1:
        return {}
    variables = variables or {}
    problems: dict[str, str] = {}
    for definition in operations[0].variable_definitions or ():
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        if type_ is None or not is_input_type(type_):
            continue
        if name not in variables:
            if is_non_null_type(type_) and definition.default_value is None:
                problems[name] = "is required"
            continue
        value = variables[name]
        prefix = "" if isinstance(value, dict) else name

        def report(
            error: GraphQLError, path: list[str | int], prefix: str = prefix, name: str = name
        ) -> None:
            inner, problem = _shape_problem(error)
            where = ".".join(str(part) for part in [prefix, *path, *inner] if part != "")
            problems.setdefault(where or name, problem)

        validate_input_value(value, type_, report, hide_suggestions=True)
    return problems


def _count_values(value: Any, limit: int) -> int:
    """How many JSON values ``value`` holds, counting no further than ``limit + 1``."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _stand_in(operation_name: str | None) -> DocumentNode:
    """A document that cannot run, in place of one that did not parse. strawberry parses again
    whatever an extension leaves unparsed, and an error raised while parsing reaches each
    transport differently (a websocket dropped it with a traceback); reported as this
    document's validation error, it travels the same path everywhere."""
    typename = FieldNode(name=NameNode(value="__typename"), arguments=(), directives=())
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=OperationType.QUERY,
                name=NameNode(value=operation_name) if operation_name else None,
                variable_definitions=(),
                directives=(),
                selection_set=SelectionSetNode(selections=(typename,)),
            ),
        )
    )


class DocumentChecks(SchemaExtension):
    """Parses and validates through ``Documents``, then refuses an operation whose variables
    are too many or hold control characters, or whose cost is over the limit."""

    def __init__(self, *, documents: Documents) -> None:
        self.documents = documents
        self._errors: tuple[GraphQLError, ...] = ()

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        query = context.query
        if isinstance(query, str):
            checked = await self.documents.check(query)
            self._errors = checked.errors
            context.graphql_document = checked.document or _stand_in(context.operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is None:
            self.execution_context.pre_execution_errors = list(self._errors)
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        refusal = self.documents.refusal(
            context.graphql_document, context.operation_name, context.variables or {}
        )
        if refusal is not None:
            raise refusal
        yield
