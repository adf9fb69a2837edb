"""A real PostgreSQL server for the engine tests: Debian's package, a fresh cluster in a temporary folder, on a free
loopback port, JIT off; stopped afterwards. A missing server is a failure (CI installs it), not a skip."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_support import free_port

PG_ROOT = Path("/usr/lib/postgresql")


def _bin() -> Path:
    found = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        pytest.fail("PostgreSQL not found under /usr/lib/postgresql: install Debian's postgresql package "
                    "(apt-get install postgresql).")
    return found[-1].parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """The DSN of a PostgreSQL server running from a fresh temporary folder while the block runs. PostgreSQL
    refuses to run as root, so as root the server runs as the package's `postgres` user (and its folder is made
    directly under the temporary directory, which that user can reach)."""
    binaries, port = _bin(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="kpi-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "kpi", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c jit=off -c fsync=off"
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "start"], check=True, capture_output=True)
    try:
        yield f"host=127.0.0.1 port={port} user=kpi dbname=postgres"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
