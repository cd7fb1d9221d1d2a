"""The `roost` command line."""

import argparse
import asyncio
import getpass
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType

import httpx
from redis.asyncio import Redis
from strawberry.relay import to_base64

from app.observability import configure_logging
from app.processes import (
    APP,
    PortUnavailable,
    can_balance,
    ensure_port_free,
    serve_balanced,
    server_options,
)
from app.scale_data import seed_listings
from app.seed import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    SeedReport,
    demo_accounts_exist,
    is_empty,
    seed_demo_data,
)
from app.settings import ConfigurationError, Settings, load_settings
from app.wiring import build_password_hasher, build_pubsub, build_worker
from db import backups
from db.backups import BackupError
from db.database import Database
from db.embedded import EmbeddedPostgres
from db.migrate import SchemaBehind, ensure_schema_current, upgrade_to_head
from db.states import Role
from gateways.exchange_rates import EcbRates, RatesUnavailable
from services import accounts
from services.errors import Conflict, InvalidInput, NotFound
from services.exchange_rates import store_rates
from services.validation import normalize_email


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one, started here and stopped on the way out."""
    if settings.database_url:
        yield settings.database_url
        return
    # Without this, SIGTERM would end the process before the embedded server is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with EmbeddedPostgres(settings.pg_data_dir) as url:
        yield url


@asynccontextmanager
async def _maintenance_connection(url: str) -> AsyncIterator[Database]:
    # No statement timeout: a migration may rightly take longer than any request.
    database = Database(url, statement_timeout_ms=0, pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def _migrate(url: str) -> None:
    async with _maintenance_connection(url) as database:
        before, after = await upgrade_to_head(database.engine)
    print(f"Database schema at {after} (was {before or 'empty'}).")


async def _seed(settings: Settings, url: str, listings: int) -> None:
    async with _maintenance_connection(url) as database:
        await upgrade_to_head(database.engine)
        report = await seed_demo_data(
            database,
            build_password_hasher(settings),
            moderation_on=settings.listing_moderation,
        )
        print(
            f"Demo data loaded: {report.users_added} users and {report.listings_added}"
            " listings added."
        )
        print(_demo_accounts_text())
        if listings:
            print(
                await seed_listings(
                    database, count=listings, media_root=settings.data_dir / "media"
                )
            )


@dataclass(frozen=True)
class Prepared:
    seeded: SeedReport | None = None
    demo_accounts: bool = False


async def _prepare_for_serving(settings: Settings, url: str, *, embedded: bool) -> Prepared:
    """Development migrates and seeds a new embedded database; production only checks."""
    async with _maintenance_connection(url) as database:
        if settings.is_production:
            await ensure_schema_current(database.engine)
            return Prepared()
        await upgrade_to_head(database.engine)
        seeded = None
        if embedded and await is_empty(database):
            seeded = await seed_demo_data(
                database,
                build_password_hasher(settings),
                moderation_on=settings.listing_moderation,
            )
        return Prepared(seeded=seeded, demo_accounts=await demo_accounts_exist(database))


def _demo_accounts_text() -> str:
    accounts_list = ", ".join(f"{role} {email}" for role, email in DEMO_ACCOUNTS.items())
    return f"Demo accounts (password {DEMO_PASSWORD}): {accounts_list}"


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104


def _print_welcome(host: str, port: int, prepared: Prepared) -> None:
    seeded = prepared.seeded
    shown_host = _shown_host(host)
    lines = [
        "",
        f"Roost is starting: GraphiQL at http://{shown_host}:{port}/graphql",
        f"Health: http://{shown_host}:{port}/healthz, readiness: http://{shown_host}:{port}/readyz",
    ]
    if seeded is not None:
        lines.append(
            f"Loaded demo data: {seeded.users_added} users, {seeded.listings_added} listings"
            " and a trip."
        )
    if seeded is not None and seeded.sample_user_id is not None:
        node_id = to_base64("User", seeded.sample_user_id)
        lines.append(
            f'Try: {{ node(id: "{node_id}") {{ ... on User {{ firstName lastName roles }} }} }}'
        )
    if prepared.demo_accounts:
        lines.append(_demo_accounts_text())
        lines.append(
            'Sign in: mutation { login(email: "liam.obrien@example.com", '
            f'password: "{DEMO_PASSWORD}") {{ accessToken }} }}'
        )
    print("\n".join(lines) + "\n", flush=True)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    # A taken port fails now: before the database starts, and before the welcome is printed.
    ensure_port_free(host, port)
    with database_url(settings) as url:
        prepared = asyncio.run(
            _prepare_for_serving(settings, url, embedded=settings.database_url is None)
        )
        # Workers build their app from the environment, so they find the same database.
        os.environ["DATABASE_URL"] = url
        # Media links point at this server unless told otherwise.
        os.environ.setdefault("ROOST_PUBLIC_URL", f"http://{_shown_host(host)}:{port}")
        _print_welcome(host, port, prepared)
        if workers > 1 and settings.redis_url is None:
            print(
                "Without REDIS_URL each process keeps its rate limits, cache and live updates "
                "to itself: a subscriber hears only what its own process handled.\n",
                flush=True,
            )
        options = server_options(settings.max_body_bytes)
        if workers > 1 and can_balance():
            if code := serve_balanced(host, port, workers, options):
                raise SystemExit(code)
            return
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)


def seed(settings: Settings, listings: int) -> None:
    with database_url(settings) as url:
        asyncio.run(_seed(settings, url, listings))


def migrate(settings: Settings) -> None:
    with database_url(settings) as url:
        asyncio.run(_migrate(url))


class CommandFailed(Exception):
    """A command cannot do what it was asked; the message says why, for the operator."""


def _read_new_password() -> str:
    """One line of standard input when it is not a terminal (a pipe, a file, a secret store's
    output), else typed twice at a prompt that does not echo."""
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        line = stdin.readline() if stdin is not None else ""
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandFailed(
                "no password on standard input: pipe one line holding the new admin's password"
            )
        return password
    password = getpass.getpass("Password for the new admin account: ")
    if not password:
        raise CommandFailed("no password given")
    if getpass.getpass("The same password again: ") != password:
        raise CommandFailed("the two passwords differ; nothing was changed")
    return password


def _problems(error: InvalidInput) -> str:
    return "; ".join(f"{field} {problem}" for field, problem in error.fields.items())


async def _create_admin(
    settings: Settings, url: str, email: str, *, first_name: str, last_name: str
) -> None:
    async with _maintenance_connection(url) as database:
        async with database.read_session() as session:
            exists = await accounts.find_by_email(session, email) is not None
        if exists:
            user = await database.transaction(
                partial(accounts.grant_role, email=email, role=Role.ADMIN, now=datetime.now(UTC))
            )
            print(f"{user.email} is now an admin.")
            return
        password = _read_new_password()
        try:
            registration = await accounts.prepare_registration(
                email=email,
                password=password,
                first_name=first_name,
                last_name=last_name,
                as_host=False,
                passwords=build_password_hasher(settings),
            )
        except InvalidInput as error:
            raise CommandFailed(f"no account was created: {_problems(error)}") from None
        user = await database.transaction(
            partial(accounts.create_admin_account, registration=registration, now=datetime.now(UTC))
        )
    print(f"Created the admin account {user.email}; a link to confirm the address was queued.")


def create_admin(settings: Settings, email: str, *, first_name: str, last_name: str) -> None:
    # Checked before anything starts: a typo should not cost a server start or a password prompt.
    normalized = normalize_email(email)
    if normalized is None:
        raise CommandFailed(f"{email!r} is not a valid email address")
    with database_url(settings) as url:
        asyncio.run(
            _create_admin(settings, url, normalized, first_name=first_name, last_name=last_name)
        )


def backup(settings: Settings, path: Path) -> None:
    with database_url(settings) as url:
        tool = backups.back_up(url, path)
    print(f"Wrote a backup to {path} ({tool.path} {tool.version}).")


def restore(settings: Settings, path: Path) -> None:
    with database_url(settings) as url:
        tool = backups.restore(url, path)
    print(
        f"Restored {path} ({tool.path} {tool.version}). If this Roost is newer than the"
        " backup, run `roost migrate` before serving."
    )


async def _update_rates(settings: Settings, url: str) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        rates = await EcbRates(http, settings.exchange_rates_url).usd_per_unit()
    async with _maintenance_connection(url) as database:
        count = await database.transaction(partial(store_rates, rates=rates))
    print(f"Stored {count} exchange rates and repriced listings in those currencies.")


def update_rates(settings: Settings) -> None:
    with database_url(settings) as url:
        asyncio.run(_update_rates(settings, url))


async def _work(settings: Settings, url: str) -> None:
    database = Database(url, statement_timeout_ms=settings.statement_timeout_ms, pool_size=2)
    try:
        if settings.is_production:
            await ensure_schema_current(database.engine)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # Its live messages reach the API processes' subscribers only through Redis.
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        pubsub = build_pubsub(settings, redis)
        worker = build_worker(settings, database, pubsub=pubsub)
        # It hears the admins' changes of the platform's settings as the API processes do.
        pubsub.start()
        if worker.platform_settings is not None:
            worker.platform_settings.start()
        try:
            await worker.run_forever(stop)
        finally:
            if worker.platform_settings is not None:
                await worker.platform_settings.stop()
            await pubsub.stop()
            if redis is not None:
                await redis.aclose()
    finally:
        await database.dispose()


def work(settings: Settings) -> None:
    with database_url(settings) as url:
        asyncio.run(_work(settings, url))


def export_schema() -> None:
    from schema.root import build_schema

    print(build_schema().as_str())


def _positive_int(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roost", description="Roost, the GraphQL backend of a short-term rental marketplace."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the API server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=_positive_int, default=1)
    commands.add_parser(
        "worker", help="handle outbox events and expire, complete bookings (run any number)"
    )
    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    seed_parser = commands.add_parser("seed", help="load the demo data")
    seed_parser.add_argument(
        "--listings",
        type=_positive_int,
        default=None,
        metavar="N",
        help="also generate N listings (with hosts, guests, photos, blocks, bookings)",
    )
    commands.add_parser(
        "update-rates", help="fetch today's exchange rates and reprice listings for search"
    )
    admin_parser = commands.add_parser(
        "create-admin",
        help="make a user an admin; a new address gets a new account, its password read from"
        " standard input when that is not a terminal, else asked for twice",
    )
    admin_parser.add_argument("email")
    admin_parser.add_argument("--first-name", default="Roost", help="for a new account")
    admin_parser.add_argument("--last-name", default="Admin", help="for a new account")
    backup_parser = commands.add_parser(
        "backup", help="write a dump of the database (pg_dump's custom format) to PATH"
    )
    backup_parser.add_argument("path", type=Path, metavar="PATH")
    restore_parser = commands.add_parser(
        "restore", help="load a dump written by `roost backup` into an empty database"
    )
    restore_parser.add_argument("path", type=Path, metavar="PATH")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        export_schema()
        return 0
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        if args.command == "serve":
            serve(settings, args.host, args.port, args.workers)
        elif args.command == "worker":
            work(settings)
        elif args.command == "migrate":
            migrate(settings)
        elif args.command == "seed":
            seed(settings, args.listings or 0)
        elif args.command == "create-admin":
            create_admin(settings, args.email, first_name=args.first_name, last_name=args.last_name)
        elif args.command == "update-rates":
            update_rates(settings)
        elif args.command == "backup":
            backup(settings, args.path)
        elif args.command == "restore":
            restore(settings, args.path)
    except (
        BackupError,
        CommandFailed,
        Conflict,
        ConfigurationError,
        SchemaBehind,
        NotFound,
        RatesUnavailable,
        PortUnavailable,
    ) as error:
        print(f"roost: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
