"""Node and the modules of tests/js (the graphql-ws client, playwright-core), installed as
package-lock.json pins them, and a Chromium for playwright-core to drive."""

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).parent / "js"
# Debian's package (what .ci/run installs), then other usual names.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def node_with_modules() -> str:
    """node, with tests/js's modules installed; skips the test when node or npm is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: the tests' JavaScript clients cannot run")
    lock = (JS / "package-lock.json").read_bytes()
    stamp = JS / "node_modules" / ".roost-installed"
    wanted = hashlib.sha256(lock).hexdigest()
    # The test processes of pytest-xdist install into one directory: one at a time.
    with (JS / ".npm-install.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not stamp.is_file() or stamp.read_text() != wanted:
            installed = subprocess.run(  # noqa: S603
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=JS,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert installed.returncode == 0, installed.stderr
            stamp.write_text(wanted)
    return node


def chromium() -> str:
    """A Chromium's executable (ROOST_CHROMIUM, else the first on PATH); skips the test when
    there is none."""
    given = os.environ.get("ROOST_CHROMIUM")
    if given:
        return given
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    pytest.skip(
        "no Chromium found (apt-get install chromium, or set ROOST_CHROMIUM): the dashboard's "
        "browser test cannot run"
    )
