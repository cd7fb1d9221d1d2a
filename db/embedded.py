"""The embedded PostgreSQL (the pgserver wheel) used when no DATABASE_URL is given."""

import json
import logging
import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

# pgserver's list of the pids holding a handle on the server, in pgdata.
HANDLES_FILE = ".handle_pids.json"
# Ours beside it: when each of our holders started, so a reused pid is told from its holder.
STARTS_FILE = ".roost_handle_starts.json"


def _read(path: Path, empty: object) -> object:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return empty


def _started_at(pid: int) -> float | None:
    """When the process ``pid`` started, or None when none runs under it (a zombie, killed
    but not yet reaped by its parent, counts as none)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def _holds(pid: int, recorded_start: float | None) -> bool:
    try:
        started = _started_at(pid)
    except psutil.AccessDenied:  # alive, but not ours to look at
        return recorded_start is None
    if started is None:
        return False
    # The same pid with another start time is a new process that reused the number.
    return recorded_start is None or abs(started - recorded_start) < 1.0


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drops from pgserver's handle list the pids whose processes are gone; answers them.

    pgserver stops the server when the last pid in the list lets go, so a holder killed with
    SIGKILL (no atexit) would otherwise keep it running after every later user left. A pid can
    be reused by an unrelated process: where we recorded when its holder started, a different
    start time means the holder is gone too (a pid without a record, alive, is kept: it may be
    a holder that has not recorded itself yet). Call it holding pgserver's lock.
    """
    handles_path, starts_path = pgdata / HANDLES_FILE, pgdata / STARTS_FILE
    handles = _read(handles_path, None)
    starts = _read(starts_path, {})
    starts = starts if isinstance(starts, dict) else {}
    if handles is None and not handles_path.exists():
        handles = []
    elif not isinstance(handles, list) or not all(isinstance(pid, int) for pid in handles):
        # Torn by a crash mid-write: pgserver would fail on it at every start from now on.
        handles_path.write_text("[]")
        handles = []
    live = [pid for pid in handles if _holds(pid, starts.get(str(pid)))]
    dead = [pid for pid in handles if pid not in live]
    if dead:
        handles_path.write_text(json.dumps(live))
    live_keys = {str(pid) for pid in live}
    kept_starts = {pid: at for pid, at in starts.items() if pid in live_keys}
    if kept_starts != starts:
        starts_path.write_text(json.dumps(kept_starts))
    return dead


def _record_start(pgdata: Path, pid: int, started: float | None) -> None:
    path = pgdata / STARTS_FILE
    starts = _read(path, {})
    starts = starts if isinstance(starts, dict) else {}
    if started is None:
        starts.pop(str(pid), None)
    else:
        starts[str(pid)] = started
    path.write_text(json.dumps(starts))


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``; stopped when the last user lets go.

    pgserver counts the processes holding a handle, so ``roost seed`` run beside ``roost serve``
    shares the running server and leaves it running. Handles of processes that died without
    letting go are dropped at start, so the last live user still stops the server.
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # pgserver keeps its lock under the user's runtime dir, and falls back quietly enough.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            # Imported late: only the embedded mode needs pgserver.
            from pgserver.postgres_server import PostgresServer, get_server

        self.pgdata.mkdir(parents=True, exist_ok=True)
        # The lock pgserver takes around every change of its handle list.
        with PostgresServer._lock:
            if dead := forget_dead_handles(self.pgdata):
                log.warning(
                    "dropped handles of processes that died holding the embedded PostgreSQL",
                    extra={"pids": dead},
                )
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
        self._server = server = get_server(self.pgdata, cleanup_mode="stop")
        with PostgresServer._lock:
            _record_start(self.pgdata, os.getpid(), _started_at(os.getpid()))
        return server.get_uri("postgres")

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        with server._lock:
            # A holder killed since we started must not keep the server running for nobody.
            forget_dead_handles(self.pgdata)
        server.cleanup()  # stops the server only when no other process holds it
        with server._lock:
            _record_start(self.pgdata, os.getpid(), None)
            others = _read(self.pgdata / HANDLES_FILE, [])
        if others:
            log.info(
                "left the embedded PostgreSQL running: other Roost processes use it",
                extra={"pids": others},
            )
        else:
            log.info("embedded PostgreSQL stopped")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
