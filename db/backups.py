"""Backups through PostgreSQL's own tools: `pg_dump` in its custom format, `pg_restore` into an
empty database.

pg_dump reads the whole database in one snapshot, so a dump taken while Roost serves is
consistent. It must be at least as new as the server (it refuses older servers' newer
catalogues), so the tools are chosen by version among those this machine has: on PATH, in the
usual per-version directories of Linux distributions, and in the pgserver wheel that runs the
embedded server. The one whose major version matches the server's is preferred, then the
nearest newer one. The password travels in PGPASSWORD, never on a command line that `ps`
shows.
"""

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from glob import glob
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

# The per-version client directories of Debian/Ubuntu and of the PGDG packages for RHEL.
VERSIONED_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
_VERSION = re.compile(r"\(PostgreSQL\) ((\d+)(?:\.\d+)*)")
# How every archive in pg_dump's custom format begins.
CUSTOM_FORMAT_MAGIC = b"PGDMP"
# Tables a dump must not be restored over, listed in the refusal; the count says the rest.
_SHOWN_TABLES = 5


class BackupError(Exception):
    """A backup or a restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int
    version: str


@dataclass(frozen=True)
class LibpqTarget:
    """How libpq's tools reach the database: a URL without the password, and the environment
    that carries it."""

    url: str
    env: dict[str, str]
    name: str


def libpq_target(database_url: str) -> LibpqTarget:
    parsed = make_url(database_url)
    query = dict(parsed.query)
    # asyncpg's spelling; libpq refuses query parameters it does not know.
    if "ssl" in query and "sslmode" not in query:
        ssl = query.pop("ssl")
        query["sslmode"] = "require" if ssl in ("true", "1", "on") else ssl
    else:
        query.pop("ssl", None)
    # Built anew: URL.set() takes a None password to mean "keep it".
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return LibpqTarget(
        url=plain.render_as_string(hide_password=False), env=env, name=parsed.database or ""
    )


def _asyncpg_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _embedded_bin() -> Path | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _candidates(program: str) -> list[Path]:
    found: list[Path] = []
    on_path = shutil.which(program)
    if on_path:
        found.append(Path(on_path))
    for pattern in VERSIONED_BIN_GLOBS:
        found.extend(Path(directory) / program for directory in sorted(glob(pattern)))
    if (embedded := _embedded_bin()) is not None:
        found.append(embedded / program)
    return found


def tool_version(path: Path) -> Tool | None:
    """The tool at ``path`` with its version, or None when there is none there that runs."""
    if not os.access(path, os.X_OK):
        return None
    try:
        answer = subprocess.run(  # noqa: S603 (a PostgreSQL client found above)
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = _VERSION.search(answer.stdout)
    if answer.returncode != 0 or match is None:
        return None
    return Tool(path=path, major=int(match.group(2)), version=match.group(1))


def available(program: str) -> list[Tool]:
    """Every copy of ``program`` this machine has that runs, each once."""
    tools: dict[str, Tool] = {}
    seen: set[Path] = set()
    for path in _candidates(program):
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        # Debian's /usr/bin/pg_dump is a wrapper running one of /usr/lib/postgresql/*/bin:
        # the same version twice is one tool.
        if (tool := tool_version(path)) is not None:
            tools.setdefault(tool.version, tool)
    return list(tools.values())


def _in_preference(program: str, tools: list[Tool], server_major: int) -> list[Tool]:
    """The tools new enough for the server: its major version first, then the nearer newer
    ones; older ones cannot read a newer server's catalogue."""
    # sorted() keeps equals in the order of preference of ``_candidates``.
    usable = sorted((tool for tool in tools if tool.major >= server_major), key=lambda t: t.major)
    if usable:
        return usable
    found = ", ".join(f"{tool.version} at {tool.path}" for tool in tools) or "none"
    raise BackupError(
        f"{program} must be at least as new as the server (PostgreSQL {server_major}); found:"
        f" {found}. Install the PostgreSQL {server_major} client tools (on Debian or Ubuntu:"
        f" postgresql-client-{server_major}) or put a newer {program} on PATH."
    )


def choose(program: str, tools: list[Tool], server_major: int) -> Tool:
    return _in_preference(program, tools, server_major)[0]


def choose_restorer(tools: list[Tool], server_major: int, dump: Path) -> Tool:
    """The preferred pg_restore that can read ``dump``: one older than the pg_dump that wrote
    it may not know its archive format (a dump by the embedded server's pg_dump 16 is unreadable
    to pg_restore 15)."""
    refusals: list[str] = []
    for tool in _in_preference("pg_restore", tools, server_major):
        listing = subprocess.run(  # noqa: S603 (a PostgreSQL client found above)
            [str(tool.path), "--list", str(dump)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if listing.returncode == 0:
            return tool
        refusals.append(f"pg_restore {tool.version}: {listing.stderr.strip()}")
    raise BackupError(
        f"no pg_restore here can read {dump}; the newest said: {refusals[-1]}. A dump written"
        " by a newer pg_dump needs a pg_restore at least as new."
    )


def _query(database_url: str, sql: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        try:
            connection = await asyncpg.connect(_asyncpg_url(database_url))
        except (OSError, asyncpg.PostgresError) as error:
            raise BackupError(f"cannot reach the database: {error}") from None
        try:
            return await connection.fetch(sql)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def server_major(database_url: str) -> int:
    [(number,)] = _query(database_url, "SHOW server_version_num")
    return int(number) // 10_000


def _run(tool: Tool, arguments: list[str], env: dict[str, str]) -> None:
    answer = subprocess.run(  # noqa: S603 (a PostgreSQL client found above)
        [str(tool.path), *arguments],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise BackupError(f"{tool.path.name} {tool.version} failed: {answer.stderr.strip()}")


def back_up(database_url: str, path: Path) -> Tool:
    """Writes a dump of the whole database to ``path``, answering the pg_dump that wrote it.

    The dump is written beside ``path`` and renamed onto it once complete, so ``path`` never
    holds a partial dump; it is readable by its owner only (it holds password hashes and
    people's details)."""
    path = path.absolute()
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    tool = choose("pg_dump", available("pg_dump"), server_major(database_url))
    target = libpq_target(database_url)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        _run(
            tool,
            ["--format=custom", "--no-password", f"--file={partial}", f"--dbname={target.url}"],
            target.env,
        )
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return tool


def tables_in(database_url: str) -> list[str]:
    """The tables of the database outside PostgreSQL's own schemas."""
    rows = _query(
        database_url,
        "SELECT schemaname || '.' || tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    )
    return [row[0] for row in rows]


def restore(database_url: str, path: Path) -> Tool:
    """Loads the dump at ``path`` into the database, which must be empty; all or nothing.

    Objects are owned by the user restoring, and grants are not restored: a backup moves
    between servers whose roles differ. Statistics are gathered afterwards, as a dump has none.
    """
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    with path.open("rb") as dump:
        if dump.read(len(CUSTOM_FORMAT_MAGIC)) != CUSTOM_FORMAT_MAGIC:
            raise BackupError(
                f"{path} is not a dump in pg_dump's custom format (what `roost backup` writes)"
            )
    major = server_major(database_url)
    target = libpq_target(database_url)
    if tables := tables_in(database_url):
        shown = ", ".join(tables[:_SHOWN_TABLES])
        more = f" and {len(tables) - _SHOWN_TABLES} more" if len(tables) > _SHOWN_TABLES else ""
        raise BackupError(
            f"the database {target.name!r} is not empty (it has {shown}{more}); a backup is"
            " restored into an empty database only: create one (createdb, or CREATE DATABASE)"
            " and point DATABASE_URL at it"
        )
    tool = choose_restorer(available("pg_restore"), major, path)
    _run(
        tool,
        [
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            "--no-password",
            f"--dbname={target.url}",
            str(path),
        ],
        target.env,
    )
    _query(database_url, "ANALYZE")
    return tool
