"""The embedded PostgreSQL stops with its last live user, even after users were killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from db.embedded import HANDLES_FILE, STARTS_FILE, forget_dead_handles
from tests.helpers import postgres_processes

ROOT = Path(__file__).parent.parent

# Opens the embedded server, says so, and lets go cleanly when its stdin closes.
HOLDER = """
import logging
import sys
from pathlib import Path
from db.embedded import EmbeddedPostgres

logging.basicConfig(level=logging.INFO)
logging.getLogger("pgserver").setLevel(logging.WARNING)
with EmbeddedPostgres(Path(sys.argv[1])):
    print("ready", flush=True)
    sys.stdin.read()
"""


def roost_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ROOST_ENV")}
    env["ROOST_DATA_DIR"] = str(data_dir)
    return env


def holders(pgdata: Path) -> list[int]:
    try:
        return json.loads((pgdata / HANDLES_FILE).read_text())
    except FileNotFoundError:
        return []
    except ValueError:  # read while pgserver rewrites it: look again
        time.sleep(0.05)
        return holders(pgdata)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_user_does_not_keep_the_server_running_after_the_last_live_one_leaves(
    data_dir: Path,
) -> None:
    pgdata = data_dir / "pg"
    env = roost_env(data_dir)
    holder_log = data_dir / "holder.log"
    holder = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", HOLDER, str(pgdata)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=holder_log.open("w"),
        text=True,
    )
    worker = None
    try:
        assert holder.stdout.readline() == "ready\n"
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: worker.pid in holders(pgdata), "roost worker to open the server")
        worker.send_signal(signal.SIGKILL)  # no atexit, no cleanup: its handle stays behind
        worker.wait()
        assert worker.pid in holders(pgdata)

        migrate = subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr
        # The holder is alive: its handle is kept, and the server runs on for it.
        assert holders(pgdata) == [holder.pid]
        assert postgres_processes(pgdata)
        # ... and the command says so, rather than that it stopped the server.
        assert "left the embedded PostgreSQL running" in migrate.stderr
        assert "embedded PostgreSQL stopped" not in migrate.stderr
    finally:
        if worker is not None and worker.poll() is None:  # the test failed before killing it
            worker.kill()
            worker.wait()
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    # The last live user let go: the server stopped, though a killed user was listed.
    assert postgres_processes(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()
    assert holders(pgdata) == []
    assert "embedded PostgreSQL stopped" in holder_log.read_text()


def a_zombie() -> subprocess.Popen:
    """A child killed and not yet reaped: its pid still answers, as a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, "a zombie")
    return child


def test_only_handles_of_processes_that_still_run_are_kept(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone_pid = int(gone.stdout)
    zombie = a_zombie()
    live = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]  # noqa: S607
    reused, recorded, unrecorded = live
    try:
        started = {p.pid: psutil.Process(p.pid).create_time() for p in live}
        (tmp_path / HANDLES_FILE).write_text(
            json.dumps([gone_pid, zombie.pid, reused.pid, recorded.pid, unrecorded.pid])
        )
        (tmp_path / STARTS_FILE).write_text(
            json.dumps(
                {
                    str(gone_pid): 1.0,
                    # Its holder started an hour before the process now running under its pid.
                    str(reused.pid): started[reused.pid] - 3600,
                    str(recorded.pid): started[recorded.pid],
                }
            )
        )

        assert sorted(forget_dead_handles(tmp_path)) == sorted([gone_pid, zombie.pid, reused.pid])
        assert holders(tmp_path) == [recorded.pid, unrecorded.pid]
        assert json.loads((tmp_path / STARTS_FILE).read_text()) == {
            str(recorded.pid): started[recorded.pid]
        }
        assert forget_dead_handles(tmp_path) == []  # nothing more to drop
    finally:
        zombie.wait()
        for process in live:
            process.kill()
            process.wait()


def test_a_handle_list_torn_by_a_crash_is_started_afresh(tmp_path: Path) -> None:
    (tmp_path / HANDLES_FILE).write_text("[12, 3")
    assert forget_dead_handles(tmp_path) == []
    assert holders(tmp_path) == []
