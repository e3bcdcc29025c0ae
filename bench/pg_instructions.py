"""PostgreSQL's instructions per call, counted by valgrind: the database's share of a call, which
this machine's noise does not move either.

    PYTHONPATH=.:generated python -m bench.pg_instructions URL [--calls 50] [--first-group 20001]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). Copies it
(pg_dump) into a private PostgreSQL cluster of the same installation, started under `valgrind
--tool=callgrind` on a free port, captures the statements of a GetGroup and of a resolve and an
unresolve through the core (bench.bare.capture), replays them for other groups over one
connection, and reads that backend's instruction count when it exits. Two runs of different
lengths: their difference per call takes off the connection's start-up and the statements' first
plannings. A resolve is the mean of a resolve and an unresolve of a group nothing changed before
(make bench's resolve scenario). bench.instructions counts the server's side; timed runs of
PostgreSQL's CPU spread by tens of percent here, these repeat within ~1 %. Scratch numbers for
BENCHMARKS.md, not a target of `make bench`. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import bare
from bench.instructions import dump_total, require_valgrind
from bench.serverproc import free_port

TEMPLATE = 99_990  # bench.bare's template group of the 100,000-group data set
SHORT = 10  # calls in the shorter run; the longer one makes `calls` more


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    return Path(out)


@contextlib.contextmanager
def private_cluster(source_url: str) -> Iterator[tuple[str, Path]]:
    """A copy of source_url's database in a cluster run under callgrind: (its URL, the folder
    where each backend writes cg.<pid> when it exits)."""
    bindir, port = _bindir(), free_port()
    with tempfile.TemporaryDirectory(prefix="issues-pg-instr-") as tmp:
        root = Path(tmp)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        data = root / "data"
        subprocess.run([*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)  # fmt: skip
        cmd = [
            *_as_postgres(), "valgrind", "--tool=callgrind", f"--callgrind-out-file={root}/cg.%p",
            str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
            "-c", "listen_addresses=127.0.0.1", "-c", "autovacuum=off", "-c", "timezone=Etc/UTC",
        ]  # fmt: skip
        log = (root / "server.log").open("wb")
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"postgresql://postgres@127.0.0.1:{port}/bench"
        try:
            _wait_ready(url.replace("/bench", "/postgres"), alive=lambda: server.poll() is None)
            _copy(source_url, url)
            yield url, root
        finally:
            server.terminate()  # SIGTERM: PostgreSQL's smart shutdown; the copy goes with the folder
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _wait_ready(url: str, *, alive: Callable[[], bool]) -> None:
    import psycopg

    deadline = time.monotonic() + 300  # valgrind starts PostgreSQL ~50x slower
    while time.monotonic() < deadline and alive():
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            time.sleep(1)
    raise RuntimeError("the private PostgreSQL did not start")


def _copy(source_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("/bench", "/postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    dump = subprocess.Popen(["pg_dump", "--no-owner", source_url], stdout=subprocess.PIPE)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], stdin=dump.stdout, check=True, capture_output=True)
    if dump.wait() != 0:
        raise RuntimeError("pg_dump failed")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # as bench/dataset.py leaves the bench's database


def _backend_instructions(root: Path, pid: int) -> int:
    dump = root / f"cg.{pid}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # written when the backend exits, after the connection closed
        if dump.exists() and (total := dump_total(dump.read_text(errors="replace"))) is not None:
            dump.unlink()
            return total
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump from backend {pid}")


def _run(url: str, root: Path, replay: Callable[[Any, int], None], *, calls: int, first: int) -> int:
    import psycopg

    from server.storage.db import SESSION_OPTIONS

    conn = psycopg.connect(url, autocommit=True, options=SESSION_OPTIONS)
    pid = conn.info.backend_pid
    for k in range(calls):
        replay(conn, first + k)
    conn.close()
    return _backend_instructions(root, pid)


def measure(source_url: str, *, calls: int, first_group: int) -> dict[str, float]:
    """PostgreSQL's instructions per GetGroup and per first-touch resolve."""
    with private_cluster(source_url) as (url, root):
        trips = bare.capture(url, organization_id=1, user_id=1, template=TEMPLATE)

        def get(conn: Any, group_id: int) -> None:
            bare._replay(conn, trips["get"], template=TEMPLATE, group_id=group_id)

        def resolve(conn: Any, group_id: int) -> None:  # a resolve, then an unresolve: two first touches
            bare._replay(conn, trips["resolved"], template=TEMPLATE, group_id=group_id)
            bare._replay(conn, trips["unresolved"], template=TEMPLATE, group_id=group_id)

        out: dict[str, float] = {}
        for kind, replay, per in (("get", get, 1), ("resolve", resolve, 2)):
            short = _run(url, root, replay, calls=SHORT, first=first_group)
            long = _run(url, root, replay, calls=SHORT + calls, first=first_group + SHORT)
            out[kind] = (long - short) / calls / per
            first_group += 2 * SHORT + calls
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--first-group", type=int, default=20_001,
                        help="the groups replayed from here on (in the private copy only)")  # fmt: skip
    args = parser.parse_args()
    require_valgrind()
    for kind, value in measure(args.url, calls=args.calls, first_group=args.first_group).items():
        print(f"{kind:8} {value:14,.0f} PostgreSQL instructions per call")


if __name__ == "__main__":
    main()
