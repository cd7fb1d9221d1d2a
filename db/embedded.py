"""The embedded PostgreSQL (the pgserver wheel) used when no DATABASE_URL is given."""

import logging
import warnings
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``; stopped when the last user lets go.

    pgserver counts the processes holding a handle, so ``roost seed`` run beside ``roost serve``
    shares the running server and leaves it running.
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # pgserver keeps its lock under the user's runtime dir, and falls back quietly enough.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pgserver  # imported late: only the embedded mode needs it

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return self._server.get_uri("postgres")

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
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
