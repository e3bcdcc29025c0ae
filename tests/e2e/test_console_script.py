"""The installed console script `issue-service`, as users and the container run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import grpc
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from tests.e2e.demo_server import DEMO, ROOT, TOKENS, free_port

SCRIPT = Path(sys.executable).parent / "issue-service"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_console_script_is_the_same_entry_point_as_python_m_server() -> None:
    (script,) = entry_points(group="console_scripts", name="issue-service")
    assert script.value == "server.__main__:main"
    assert SCRIPT.is_file(), f"{SCRIPT} is not installed: run `make venv`"
    usage = _run("--help")
    assert usage.returncode == 0
    for command in ("serve", "migrate", "seed", "relay", "health"):
        assert command in usage.stdout


def test_migrate_seed_serve_health_and_stop_through_the_installed_script(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'script.db'}"
    assert _run("--database-url", url, "migrate").returncode == 0
    seeded = _run("--database-url", url, "seed", str(DEMO), "--replace")
    assert seeded.returncode == 0 and "6 groups" in seeded.stdout, seeded.stderr
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ISSUES_TOKENS": str(TOKENS)}  # the token file from its variable this time
    serve = [str(SCRIPT), "--database-url", url, "serve", "--address", address]
    proc = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = issue_service_pb2_grpc.IssueServiceStub(channel)
            reply = stub.GetGroup(
                pb.GetGroupRequest(organization_id=1, group_id=1),
                metadata=(("authorization", "Bearer dev-token"),),
                timeout=10,
            )
        assert reply.group.short_id == "API-1"
        healthy = _run("health", "--address", address)
        assert (healthy.returncode, "SERVING" in healthy.stdout) == (0, True), healthy.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    gone = _run("health", "--address", address)
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stderr
