"""The server under test: `python -m server serve` in its own process, as users run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN = "bench-token"
ACTING_USER = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tokens(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "tokens": [
                    {
                        "name": "bench",
                        "token": TOKEN,
                        "scopes": ["event:read", "event:write", "event:admin"],
                    }
                ]
            }
        )
    )
    return path


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of a process, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a /proc stat file: a process's, or one thread's (/proc/PID/task/TID/stat)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (backends, WAL writer, ...).

    The whole cluster, not only the bench's database: on a quiet machine that is the bench's.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def process_tree(pid: int) -> list[int]:
    """pid and its live descendants (a supervisor's workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return out


def tree_sum(pid: int, read: Any) -> Any:
    """read(pid) summed over the process tree; processes that exit meanwhile count as zero."""
    total: Any = None
    for member in process_tree(pid):
        try:
            value = read(member)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total = value if total is None else _add(total, value)
    return total


def _add(a: Any, b: Any) -> Any:
    return {k: a[k] + b[k] for k in a} if isinstance(a, dict) else a + b


def wait_serving(address: str, *, alive: Callable[[], bool], timeout: float = 30.0, log: str = "") -> None:
    """Until Health/Check at address says SERVING; fails at once when alive() turns false."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"server exited early{log}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise RuntimeError(f"server not serving after {timeout}s{log}")


GRACE = 2.0  # serve --grace, as the harness starts the server
PRE_STOP_DELAY = 2.0  # serve's default --pre-stop-delay


def _stop_bound() -> float:
    from server.processes.supervisor import DRAIN_MARGIN
    from server.transport.shutdown import DRAIN_TIMEOUT

    return PRE_STOP_DELAY + GRACE + DRAIN_TIMEOUT + DRAIN_MARGIN + 1.0


@dataclass
class ServerProcess:
    url: str
    workdir: Path
    processes: int | None = None  # serve --processes; None: the server's default (one per CPU)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    stop_seconds: float | None = None  # how long the last stop() took
    extra_args: tuple[str, ...] = ()  # more `serve` flags (bench/ab.py compares variants)
    extra_env: tuple[tuple[str, str], ...] = ()
    executable: str = sys.executable  # another interpreter's venv, for bench/ab.py
    cwd: str | None = None  # another checkout's root (`python -m server` imports from its cwd first)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> None:
        self.port = free_port()
        tokens = write_tokens(self.workdir / "tokens.json")
        self.log_path = self.workdir / f"server-{self.port}.log"
        env = {**os.environ, "ISSUES_COUNT_QUERIES": "1", "PYTHONUNBUFFERED": "1", **dict(self.extra_env)}
        cmd = [
            self.executable,
            "-m",
            "server",
            "--database-url",
            self.url,
            "serve",
            "--address",
            self.address,
            "--tokens",
            str(tokens),
            "--grace",
            str(GRACE),
            *([] if self.processes is None else ["--processes", str(self.processes)]),
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd)
        self._wait_serving(timeout)

    def _wait_serving(self, timeout: float) -> None:
        proc = self.proc
        assert proc is not None
        wait_serving(self.address, alive=lambda: proc.poll() is None, timeout=timeout,
                     log=f"; see {self.log_path}")  # fmt: skip

    def memory(self) -> dict[str, int]:
        """RSS and peak RSS summed over the supervisor and its workers (kB)."""
        assert self.proc is not None
        return dict(tree_sum(self.proc.pid, proc_status))

    def cpu(self) -> float:
        """CPU seconds of the supervisor and its live workers."""
        assert self.proc is not None
        return float(tree_sum(self.proc.pid, cpu_seconds))

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def access_lines(self, start: int = 0) -> list[dict[str, Any]]:
        """The server's JSON access lines written since byte offset `start`."""
        with self.log_path.open("rb") as fh:
            fh.seek(start)
            data = fh.read().decode(errors="replace")
        out = []
        for line in data.splitlines():
            if '"method"' in line and line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            # The server's own bound (what its supervisor allows a worker, plus a second), so a
            # slow drain is reported as such and only a hung server is killed.
            return self.proc.wait(timeout=_stop_bound())
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)
        finally:
            self.stop_seconds = round(time.monotonic() - started, 1)
