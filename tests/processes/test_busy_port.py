"""A second server on a busy port fails loudly, as a user would see it: a clear error, exit 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.security.support import ROOT, ServerProcess, child_env, migrate, start_server, write_tokens


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    migrate(url)
    return url


@pytest.fixture()
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    write_tokens(path, {"t": ("secret", ["event:read"])})
    return path


def serve_on(url: str, tokens: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """`serve` on a given port, expected to exit by itself (it cannot bind)."""
    args = [sys.executable, "-m", "server", "--database-url", url, "serve", "--address", f"127.0.0.1:{port}",
            "--tokens", str(tokens), *extra]  # fmt: skip
    return subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60)


def assert_refused(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
    assert "listening on" not in result.stdout


def assert_still_serving(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_second_server_on_a_busy_port_exits_1_with_a_clear_error(sqlite_url: str, tokens: Path) -> None:
    server = start_server(sqlite_url, tokens)
    try:
        assert_refused(serve_on(sqlite_url, tokens, server.port), server.port)
        assert_still_serving(server)
    finally:
        server.stop()
    assert server.proc.returncode == 0


def test_a_port_held_by_another_program_is_refused_too(sqlite_url: str, tokens: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert_refused(serve_on(sqlite_url, tokens, port), port)
