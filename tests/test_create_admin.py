"""`roost create-admin EMAIL` for an address with no account: the password comes from standard
input when it is not a terminal, else from a prompt typed twice, and is checked as sign-up's."""

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.cli import main as roost
from db.database import Database
from db.models import User
from tests.accounts_helpers import login, unique_email

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "a long admin passphrase 7"


async def accounts_with(database: Database, email: str) -> int:
    async with database.read_session() as session:
        return await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )


@pytest.fixture
def command_env(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment `roost` runs with: the tests' database, cheap password hashing."""
    env = {
        "DATABASE_URL": app.state.settings.database_url,
        "ROOST_ARGON2_TIME_COST": "1",
        "ROOST_ARGON2_MEMORY_KIB": "8192",
        "ROOST_DATA_DIR": str(app.state.settings.data_dir),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **env}


def piped(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


async def test_a_piped_password_makes_a_new_admin_account(
    client: httpx.AsyncClient, database: Database, command_env: dict[str, str]
) -> None:
    email = unique_email("operator")
    # A real pipe, as `printf '%s\n' "$PASSWORD" | roost create-admin ...` gives it.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "create-admin", email, "--first-name", "Olu"],
        input=NEW_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=command_env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert NEW_PASSWORD not in result.stdout + result.stderr
    assert f"Created the admin account {email}" in result.stdout

    body = await login(client, email, NEW_PASSWORD)  # the trailing newline was not kept
    assert "errors" not in body, body
    user = body["data"]["login"]["user"]
    assert user["roles"] == ["GUEST", "ADMIN"]
    assert user["firstName"] == "Olu"


@pytest.mark.usefixtures("command_env")
async def test_a_weak_or_missing_password_or_a_bad_email_creates_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    email = unique_email("operator")
    weak = "short"
    piped(monkeypatch, weak + "\n")
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 2
    error = capsys.readouterr().err
    assert "password must be at least" in error
    assert weak not in error.replace("password", "")

    common = "password1234"  # long enough, but on sign-up's list of common passwords
    piped(monkeypatch, common + "\n")
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 2
    assert "most common passwords" in capsys.readouterr().err

    for empty in ("", "\n"):
        piped(monkeypatch, empty)
        assert await asyncio.to_thread(roost, ["create-admin", email]) == 2
        assert "no password on standard input" in capsys.readouterr().err

    piped(monkeypatch, NEW_PASSWORD + "\n")
    assert await asyncio.to_thread(roost, ["create-admin", "not an address"]) == 2
    assert "'not an address' is not a valid email address" in capsys.readouterr().err

    assert await accounts_with(database, email) == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> Iterator[str]:
    """Standard input is a terminal; each prompt gets the next of ``answers``."""
    monkeypatch.setattr(sys, "stdin", Terminal("never read\n"))
    remaining = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(remaining))
    return remaining


@pytest.mark.usefixtures("command_env")
async def test_at_a_terminal_the_password_is_typed_twice(
    client: httpx.AsyncClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = unique_email("operator")
    typed(monkeypatch, [NEW_PASSWORD, NEW_PASSWORD + "x"])
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    assert await accounts_with(database, email) == 0

    remaining = typed(monkeypatch, [NEW_PASSWORD, NEW_PASSWORD])
    assert await asyncio.to_thread(roost, ["create-admin", email]) == 0
    assert list(remaining) == []
    assert NEW_PASSWORD not in capsys.readouterr().out
    body = await login(client, email, NEW_PASSWORD)
    assert body["data"]["login"]["user"]["roles"] == ["GUEST", "ADMIN"]
