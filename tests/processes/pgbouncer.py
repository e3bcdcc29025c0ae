"""A PgBouncer of the test's own, in transaction pooling mode, in front of the test's PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

START_TIMEOUT = 30.0
# PgBouncer 1.18 (Debian 12) refuses the `options` startup parameter that carries the server's
# lock and statement timeouts (and jit=off); behind it they are set per server connection (connect_query) or on
# the role (ALTER ROLE ... SET), as the README says. This is that recipe.
TIMEOUTS = "SET lock_timeout = 5000; SET statement_timeout = 30000; SET jit = off"
INI = """\
[databases]
* = host={host} port={port} connect_query='{timeouts}'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = options,extra_float_digits
log_connections = 1
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


@dataclass(frozen=True)
class Bouncer:
    port: int
    log: Path

    def url(self, database_url: str, **params: str) -> str:
        """`database_url` routed through this PgBouncer, with extra URL parameters."""
        parts = urlparse(database_url)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{parts.username}@127.0.0.1:{self.port}{parts.path}" + (f"?{query}" if query else "")


def pgbouncer_binary() -> str:
    """The binary, or fail in CI (CI=true) / skip elsewhere, with the install command."""
    found = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None)
    if found is None:
        message = "pgbouncer is not installed (apt-get install -y pgbouncer)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI runs the PgBouncer test, so this is a failure")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> list[str]:
    """PgBouncer refuses to run as root: switch to an unprivileged user that owns its directory."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["-u", name]
    raise AssertionError("running as root and no unprivileged user for pgbouncer")


@contextmanager
def pgbouncer(upstream_url: str) -> Iterator[Bouncer]:
    binary = pgbouncer_binary()
    upstream = urlparse(upstream_url)
    workdir = Path(tempfile.mkdtemp(prefix="issues-pgbouncer-"))
    port = _free_port()
    ini = workdir / "pgbouncer.ini"
    ini.write_text(INI.format(host=upstream.hostname, port=upstream.port or 5432, timeouts=TIMEOUTS,
                              listen_port=port, dir=workdir))  # fmt: skip
    (workdir / "users.txt").write_text(f'"{upstream.username}" ""\n')
    user = _run_as()
    if user:
        entry = pwd.getpwnam(user[1])
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    proc = subprocess.Popen([binary, *user, str(ini)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_listening(port, proc, workdir / "pgbouncer.log")
        yield Bouncer(port=port, log=workdir / "pgbouncer.log")
    finally:
        proc.send_signal(signal.SIGTERM)  # immediate shutdown
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_listening(port: int, proc: subprocess.Popen[str], log: Path) -> None:
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"pgbouncer exited {proc.returncode}: {out}{_text(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"pgbouncer did not listen on {port}: {_text(log)}")


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
