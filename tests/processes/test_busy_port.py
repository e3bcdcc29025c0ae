"""A second server on a busy port fails loudly, as a user would see it: a clear error, exit 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.security.support import ROOT, ServerProcess, child_env, start_server


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


@pytest.mark.parametrize("first", ["1", "2"], ids=["first-single", "first-supervisor"])
@pytest.mark.parametrize("second", ["1", "2"], ids=["second-single", "second-supervisor"])
def test_a_second_server_on_a_busy_port_exits_1_with_a_clear_error(
    sqlite_url: str, tokens: Path, first: str, second: str
) -> None:
    server = start_server(sqlite_url, tokens, "--processes", first)
    try:
        assert_refused(serve_on(sqlite_url, tokens, server.port, "--processes", second), server.port)
        assert_still_serving(server)
    finally:
        server.stop()
    assert server.proc.returncode == 0


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_held_by_another_program_is_refused_too(sqlite_url: str, tokens: Path, processes: str) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert_refused(serve_on(sqlite_url, tokens, port, "--processes", processes), port)


def test_a_second_supervisor_is_kept_out_by_the_port_lock_even_when_it_would_join(
    sqlite_url: str, tokens: Path
) -> None:
    """SO_REUSEPORT would let a second supervisor's workers in; the lock file refuses it first."""
    server = start_server(sqlite_url, tokens, "--processes", "2")
    try:
        with socket.socket() as joiner:  # what a second supervisor's workers could do
            joiner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            joiner.bind(("127.0.0.1", server.port))
        result = serve_on(sqlite_url, tokens, server.port, "--processes", "2")
        assert_refused(result, server.port)
    finally:
        server.stop()


def test_zero_processes_is_a_usage_error(sqlite_url: str, tokens: Path) -> None:
    result = serve_on(sqlite_url, tokens, 0, "--processes", "0")
    assert result.returncode == 2
    assert "--processes must be at least 1" in result.stderr
