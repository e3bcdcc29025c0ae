"""Security test helpers: database fingerprints and `python -m server` subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.auth import hash_token
from server.models import ALL_MODELS, Group, SchemaVersion, db

ROOT = Path(__file__).resolve().parents[2]


def fingerprint() -> tuple[Any, ...]:
    """A cheap picture of the whole database in one query: row count and max id per table, plus
    sums over the group columns an update changes (version, status, substatus, priority)."""
    parts = []
    for model in ALL_MODELS:
        if model is SchemaVersion:
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
        {"name": name, "sha256": hash_token(secret), "scopes": scopes}
        for name, (secret, scopes) in tokens.items()
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
        *extra,
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the banner comes after startup; a crash ends the stream instead
        lines.append(line)
        match = re.search(r"\(port (\d+)\)", line)
        if match:
            _drain(proc)
            return ServerProcess(proc, int(match.group(1)))
    proc.wait(timeout=10)
    raise AssertionError("server did not start:\n" + "".join(lines))


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the child's output so a full pipe never blocks its logging."""
    import threading

    def pump() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    threading.Thread(target=pump, daemon=True).start()
