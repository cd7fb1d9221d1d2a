"""The committed SDL, the scalars, and the error convention on a schema of its own."""

import datetime
import decimal
import gc
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
import strawberry
import strawberry.tools
from graphql.execution.collect_fields import CollectedFields
from strawberry.schema.config import StrawberryConfig

from app.cli import main
from schema.errors import ErrorConvention, log_unexpected_errors
from schema.execution import RoostExecutionContext
from schema.scalars import SCALAR_MAP
from services.errors import Conflict, InvalidInput, NotFound

SCHEMA_FILE = Path(__file__).parent.parent / "schema.graphql"


def test_the_committed_schema_is_what_export_schema_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["export-schema"]) == 0
    exported = capsys.readouterr().out
    assert exported == SCHEMA_FILE.read_text(), (
        "schema.graphql is stale: run `uv run roost export-schema > schema.graphql`"
    )


def test_the_api_scalars_are_declared() -> None:
    sdl = SCHEMA_FILE.read_text()
    for scalar in ("Date", "DateTime", "Decimal"):
        assert f"scalar {scalar}\n" in sdl
    assert "interface Node {" in sdl
    assert "node(id: ID!): Node" in sdl


@strawberry.type
class Query:
    @strawberry.field
    def echo_date(self, value: datetime.date) -> datetime.date:
        return value

    @strawberry.field
    def echo_decimal(self, value: decimal.Decimal) -> decimal.Decimal:
        return value

    @strawberry.field
    def moment(self, aware: bool = True) -> datetime.datetime:
        return datetime.datetime(2026, 11, 21, 10, 30, tzinfo=datetime.UTC if aware else None)

    @strawberry.field
    def missing(self) -> str | None:
        raise NotFound("No such listing.")

    @strawberry.field
    def taken(self) -> str | None:
        raise Conflict("Those nights are taken.")

    @strawberry.field
    def invalid(self) -> str | None:
        raise InvalidInput.field("title", "must not be empty")

    @strawberry.field
    def broken(self) -> str | None:
        raise RuntimeError("password=hunter2 in a stack trace")


@strawberry.type
class Plain:
    """Fields read straight off the object: the fast path of RoostExecutionContext."""

    name: str
    note: str | None
    moment: datetime.datetime


@strawberry.type
class PlainQuery:
    @strawberry.field
    def plain(self, missing_name: bool = False, naive: bool = False) -> Plain:
        when = datetime.datetime(2026, 1, 1, tzinfo=None if naive else datetime.UTC)
        return Plain(name=None if missing_name else "ok", note=None, moment=when)  # type: ignore[arg-type]


test_schema = strawberry.Schema(
    query=strawberry.tools.merge_types("Query", (Query, PlainQuery)),
    extensions=[lambda: ErrorConvention(hide_suggestions=False)],
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    execution_context_class=RoostExecutionContext,
)


@strawberry.type
class Ticks:
    @strawberry.subscription
    async def ticks(self, count: int) -> AsyncGenerator[Plain, None]:
        for _ in range(count):
            yield Plain(name="tick", note=None, moment=datetime.datetime.now(datetime.UTC))


subscribing_schema = strawberry.Schema(
    query=PlainQuery,
    subscription=Ticks,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    execution_context_class=RoostExecutionContext,
)


async def run(query: str) -> tuple[dict | None, list[dict]]:
    result = await test_schema.execute(query)
    return result.data, [error.formatted for error in result.errors or []]


async def test_scalars_round_trip() -> None:
    data, errors = await run(
        '{ echoDate(value: "2026-02-28") echoDecimal(value: "120.50") moment }'
    )
    assert errors == []
    assert data == {
        "echoDate": "2026-02-28",
        "echoDecimal": "120.50",
        "moment": "2026-11-21T10:30:00+00:00",
    }


@pytest.mark.parametrize(
    "query",
    [
        '{ echoDate(value: "2026-02-30") }',
        '{ echoDate(value: "tomorrow") }',
        '{ echoDecimal(value: "lots") }',
        '{ echoDecimal(value: "NaN") }',
        "{ echoDecimal(value: 1.5) }",
    ],
)
async def test_bad_scalar_values_are_refused_before_execution(query: str) -> None:
    data, [error] = await run(query)
    assert data is None
    assert error["extensions"]["code"] in ("GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")


async def test_a_datetime_without_an_offset_is_never_sent() -> None:
    data, [error] = await run("{ moment(aware: false) }")
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


async def test_domain_errors_keep_their_message_and_code() -> None:
    data, errors = await run("{ missing taken invalid }")
    assert data == {"missing": None, "taken": None, "invalid": None}
    by_path = {error["path"][0]: error for error in errors}
    assert by_path["missing"]["message"] == "No such listing."
    assert by_path["missing"]["extensions"] == {"code": "NOT_FOUND"}
    assert by_path["taken"]["extensions"] == {"code": "CONFLICT"}
    assert by_path["invalid"]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"title": "must not be empty"},
    }


async def test_an_unexpected_error_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    result = await test_schema.execute("{ broken }")
    [error] = [error.formatted for error in result.errors or []]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "hunter2" not in str(error)


def test_unexpected_errors_are_logged_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from graphql import GraphQLError

    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        error = GraphQLError("boom", path=["broken"], original_error=exc)
    expected = GraphQLError("gone", path=["missing"], original_error=NotFound())
    log_unexpected_errors([error, expected], "Probe")
    [record] = caplog.records
    assert record.levelname == "ERROR"
    assert record.exc_info is not None and record.exc_info[1] is error.original_error
    assert record.operation == "Probe"


async def test_plain_fields_read_directly_keep_their_errors() -> None:
    data, errors = await run("{ plain { name note moment } }")
    assert errors == []
    assert data == {"plain": {"name": "ok", "note": None, "moment": "2026-01-01T00:00:00+00:00"}}

    data, [error] = await run("{ plain(missingName: true) { name } }")
    assert data is None
    assert error["path"] == ["plain", "name"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}

    data, [error] = await run("{ plain(naive: true) { moment } }")
    assert error["path"] == ["plain", "moment"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


async def test_a_subscription_keeps_nothing_of_its_past_events() -> None:
    """graphql-core keeps a memo entry per event for the subscription's life unless each
    event has a memo of its own: a thousand subscribers then hold it all."""

    async def held_after(events: int) -> int:
        stream = await subscribing_schema.subscribe(
            f"subscription {{ ticks(count: {events}) {{ name note }} }}"
        )
        assert isinstance(stream, AsyncGenerator)
        try:
            received = 0
            async for result in stream:
                assert not result.errors, result.errors
                received += 1
                if received == events:
                    gc.collect()  # only what is still held counts
                    return sum(isinstance(o, CollectedFields) for o in gc.get_objects())
        finally:
            await stream.aclose()
        raise AssertionError("the subscription ended early")

    after_two = await held_after(2)
    assert await held_after(60) - after_two < 5
