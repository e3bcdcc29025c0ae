"""The real CLI, as users run it: migrate, seed, serve; reflection lists the service; SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "server" / "demo" / "demo.json"
TOKENS = ROOT / "server" / "demo" / "tokens.json"


def run_cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_migrate_then_seed_demo_loads_everything(db_url: str) -> None:
    assert run_cli("migrate", db_url=db_url).returncode == 0
    seeded = run_cli("seed", str(DEMO), db_url=db_url)
    assert seeded.returncode == 0, seeded.stderr
    assert "6 groups" in seeded.stdout


def test_bad_fixture_names_the_record_and_loads_nothing(db_url: str, tmp_path: Path) -> None:
    run_cli("migrate", db_url=db_url)
    data = json.loads(DEMO.read_text())
    data["groups"][2]["colour"] = "blue"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = run_cli("seed", str(bad), db_url=db_url)
    assert result.returncode == 1
    assert "groups[2] (id 3): unknown field 'colour'" in result.stderr
    again = run_cli("seed", str(DEMO), db_url=db_url)  # nothing from the bad run is left behind
    assert again.returncode == 0, again.stderr


def test_serve_exposes_reflection_and_stops_cleanly_on_sigterm(db_url: str) -> None:
    run_cli("migrate", db_url=db_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--address", f"127.0.0.1:{port}",
                             "--tokens", str(TOKENS)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name for r in replies for s in r.list_services_response.service}
        assert "issues.v1.IssueService" in names
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        lines = [json.loads(line) for line in proc.stdout.read().splitlines() if line.strip()]  # JSON only
        assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines), lines
        assert any(line.get("port") == port and "listening" in line["message"] for line in lines), lines
    finally:
        if proc.poll() is None:
            proc.kill()
            time.sleep(0.1)


def test_serve_refuses_to_start_with_malformed_settings(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "settings.json"
    bad.write_text(json.dumps({"options": {"issues.merge-unmerge.max-group-times-seen": -5}}))
    result = run_cli("serve", "--tokens", str(TOKENS), "--settings", str(bad), db_url=db_url)
    assert result.returncode == 2
    assert "must be a non-negative integer" in result.stderr
