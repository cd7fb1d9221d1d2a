"""The repository stands on its own: its guides are true to the code, they point at nothing a
clone lacks, and tests share helpers through helper modules."""

import re
from pathlib import Path

import pytest
from graphql import GraphQLObjectType, build_schema, parse, validate

ROOT = Path(__file__).parent.parent
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
API_GUIDE = (ROOT / "docs" / "api.md").read_text()
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def root_type(name: str) -> GraphQLObjectType:
    root = SCHEMA.get_type(name)
    assert isinstance(root, GraphQLObjectType)
    return root


def test_every_graphql_example_in_the_api_guide_is_valid_against_the_schema() -> None:
    examples = re.findall(r"```graphql\n(.*?)```", API_GUIDE, flags=re.DOTALL)
    assert len(examples) > 10
    for example in examples:
        assert validate(SCHEMA, parse(example)) == [], example


def reference_table(heading: str) -> list[str]:
    """The first column of the table under ``### heading`` in the API guide."""
    section = API_GUIDE.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("heading", "root"),
    [("Queries", "Query"), ("Mutations", "Mutation"), ("Subscriptions", "Subscription")],
)
def test_the_api_guide_lists_every_operation_once_and_nothing_else(heading: str, root: str) -> None:
    listed = reference_table(heading)
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == set(root_type(root).fields)


def test_operations_the_api_guide_calls_exist_with_those_arguments() -> None:
    # A subscription may share a query's name (notifications): either may be meant.
    roots = [root_type(name).fields for name in ("Query", "Mutation", "Subscription")]
    calls = re.findall(r"`(\w+)\(([^`]*)\)`", API_GUIDE)
    assert len(calls) > 5
    for name, arguments in calls:
        fields = [root[name] for root in roots if name in root]
        assert fields, name
        # Top-level argument names: what precedes a colon outside any braces.
        depth, named = 0, []
        for part in re.split(r"([{},])", arguments):
            depth += part.count("{") - part.count("}")
            if depth == 0 and ":" in part:
                named.append(part.split(":")[0].strip())
        assert any(set(named) <= set(field.args) for field in fields), (name, named)


def test_the_guides_point_only_at_what_the_repository_holds() -> None:
    for guide in GUIDES:
        text = guide.read_text()
        assert "../shared" not in text, guide
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (guide.parent / target).resolve().is_relative_to(ROOT), (guide, target)
            assert (guide.parent / target).exists(), (guide, target)


def test_tests_share_helpers_through_helper_modules() -> None:
    # Importing a test module runs its tests' module-level setup and couples test files; the
    # conftest is pytest's, for fixtures.
    for path in sorted((ROOT / "tests").glob("*.py")):
        imports = re.findall(r"^from tests\.(\w+) import", path.read_text(), flags=re.MULTILINE)
        assert not [m for m in imports if m.startswith("test_") or m == "conftest"], path
