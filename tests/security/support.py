"""Security test helpers: database fingerprints and `python -m server` subprocesses."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.storage.models import ALL_MODELS, EventSequence, Group, RelayLease, SchemaVersion, db
from server.transport.auth import hash_token

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # a server that prints no banner by then is broken, not slow


# Rows no call writes: the schema version, and the event feed's bookkeeping, which its own thread
# writes after a call has committed (it stamps the outbox rows and creates the sequence row on
# first use), so a refused call may find it changed by the call before.
BACKGROUND_MODELS = (SchemaVersion, EventSequence, RelayLease)


def fingerprint() -> tuple[Any, ...]:
    """A cheap picture of the whole database in one query: row count and max id per table, plus
    sums over the group columns an update changes (version, status, substatus, priority)."""
    parts = []
    for model in ALL_MODELS:
        if model in BACKGROUND_MODELS:
            continue
        table = f'"{model._meta.table_name}"'
        parts += [f"(SELECT COUNT(*) FROM {table})", f"(SELECT MAX(id) FROM {table})"]
    group = f'"{Group._meta.table_name}"'
    for column in ("version", "status", "COALESCE(substatus, 0)", "COALESCE(priority, 0)"):
        parts.append(f"(SELECT SUM({column}) FROM {group})")
    row = db.execute_sql("SELECT " + ", ".join(parts)).fetchone()
    return tuple(int(v) if v is not None else None for v in row)


def write_tokens(path: Path, tokens: dict[str, tuple[str, list[str]]]) -> None:
    """Token file with hashed secrets only: {name: (secret, scopes)}."""
    entries = [
        {"name": name, "sha256": hash_token(secret), "scopes": scopes} for name, (secret, scopes) in tokens.items()
    ]
    path.write_text(json.dumps({"tokens": entries}))


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "server", "--database-url", database_url, "migrate"],
        check=True,
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        timeout=60,
    )


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    port: int
    lines: queue.Queue[str | None] | None = None  # the rest of its output, as it comes
    startup: str = ""  # its output up to and including the banner

    def output(self) -> str:
        """Everything printed since the banner (or since the last call) that has arrived so far."""
        seen = []
        while self.lines is not None and not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                seen.append(line)
        return "".join(seen)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_server(database_url: str, tokens: Path, *extra: str) -> ServerProcess:
    """`python -m server serve` on a free loopback port; the port is read from its banner."""
    args = [
        sys.executable,
        "-m",
        "server",
        "--database-url",
        database_url,
        "serve",
        "--address",
        "127.0.0.1:0",
        "--tokens",
        str(tokens),
        "--grace",
        "1",
        "--pre-stop-delay",
        "0",
        *extra,
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    seen = []
    end = time.monotonic() + START_TIMEOUT
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:  # the process exited before its banner
            break
        seen.append(line)
        match = re.search(r"\(port (\d+)\)", line)
        if match:
            return ServerProcess(proc, int(match.group(1)), lines, "".join(seen))
    ServerProcess(proc, 0).stop()
    raise AssertionError("server did not start:\n" + "".join(seen))


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Read the child's output for its whole life, so a full pipe never blocks its logging."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)
