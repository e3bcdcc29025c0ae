"""NATS for the relay tests: reachability (a failure in CI), stream reads, a stoppable TCP forwarder."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import pytest

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
HOST, PORT = "127.0.0.1", int(NATS_URL.rsplit(":", 1)[1])


def require_nats() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"NATS unreachable at {NATS_URL} in CI: {exc}")
        pytest.skip(f"NATS not reachable at {NATS_URL} ({exc}); .ci/run starts it")


def unique() -> tuple[str, str]:
    """A subject prefix and a stream name no other run uses."""
    tag = uuid.uuid4().hex[:10]
    return f"test{tag}.events", f"TEST_{tag.upper()}"


async def _stream_messages(stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        if info.state.messages == 0:
            # Created by the relay, nothing published yet: first_seq is 0 then, and asking for
            # message 0 is a 400 "bad request" (it failed a relay test once, 2026-11-30).
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            out.append((msg.subject, dict(msg.headers or {}), msg.data or b""))
        return out
    finally:
        await nc.close()


def stream_messages(stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    return asyncio.run(_stream_messages(stream))


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # never created
        pass
    finally:
        await nc.close()


def delete_stream(stream: str) -> None:
    asyncio.run(_delete_stream(stream))


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def start_relay(database_url: str, *, prefix: str, stream: str, to: str = NATS_URL,
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    command = [
        sys.executable, "-m", "server", "--database-url", database_url, "relay", "--to", to,
        "--subject-prefix", prefix, "--stream", stream, "--health-address", "127.0.0.1:0",
        "--poll-interval", "0.05", "--max-backoff", "0.5", "--batch-size", "20", "--lease-ttl", "3",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    HEALTH_URLS[process.pid] = _wait_started(process)
    return process


HEALTH_URLS: dict[int, str] = {}  # relay pid -> http://host:port of its health endpoint


def relay_health(process: subprocess.Popen[bytes], path: str) -> tuple[int, str]:
    """GET a started relay's /healthz or /readyz: (status, body)."""
    try:
        with urllib.request.urlopen(HEALTH_URLS[process.pid] + path, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_started(process: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """Until the relay printed its health address (its signal handlers are in place by then)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"relay exited before it started (code {process.wait(5)})")
        if line.startswith(b"relay health on"):
            return line.decode().split()[-1].removesuffix("/healthz")
    raise AssertionError(f"relay did not start within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(30)
