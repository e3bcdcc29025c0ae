"""The demo as users start it (migrate, seed demo.json, serve with the demo tokens)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "server" / "demo" / "demo.json"
TOKENS = ROOT / "server" / "demo" / "tokens.json"
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class DemoServer:
    address: str
    log: Path
    database_url: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, db_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "server", "--database-url", db_url, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _wait_serving(address: str, proc: subprocess.Popen[bytes]) -> None:
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert proc.poll() is None


@contextmanager
def demo_server(tmp: Path) -> Iterator[DemoServer]:
    """A fresh SQLite demo database and `python -m server serve` on a free port."""
    db_url = f"sqlite:///{tmp / 'demo.db'}"
    _cli("migrate", db_url=db_url)
    _cli("seed", str(DEMO), "--replace", db_url=db_url)
    address = f"127.0.0.1:{free_port()}"
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--database-url",
                db_url,
                "serve",
                "--address",
                address,
                "--tokens",
                str(TOKENS),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        _wait_serving(address, proc)
        yield DemoServer(address=address, log=log, database_url=db_url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
