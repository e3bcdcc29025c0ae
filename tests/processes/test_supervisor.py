"""`serve --processes N` from outside: N workers on one port, SIGTERM drains them all and exits 0,
a dead worker is reported and replaced, a crash loop exits 1, a killed supervisor takes its workers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.processes import supervisor
from server.processes.children import default_processes
from tests.processes.support import alive, channels_on_every_worker, worker_pids
from tests.security.support import ServerProcess, start_server

WAIT = 60.0  # bounds for a broken supervisor, not timing asserts


def wait_for(check: Callable[[], bool], what: str, *, server: ServerProcess | None = None) -> None:
    """`server`: on giving up, say what it printed meanwhile (did the workers get the signal?)."""
    end = time.monotonic() + WAIT
    while not check():
        if time.monotonic() >= end:
            said = server.output() if server is not None else ""
            raise AssertionError(f"gave up waiting for {what}" + (f"; the server printed:\n{said}" if said else ""))
        time.sleep(0.1)


def workers(server: ServerProcess) -> list[int]:
    return worker_pids(server)


def serving(server: ServerProcess) -> bool:
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_two_processes_are_two_workers_listening_on_the_one_port(two: ServerProcess) -> None:
    pids = workers(two)
    assert len(pids) == 2
    for pid in pids:
        ports = {c.laddr.port for c in psutil.Process(pid).net_connections() if c.status == psutil.CONN_LISTEN}
        assert two.port in ports
    assert serving(two)


def test_sigterm_drains_every_worker_and_exits_0(two: ServerProcess) -> None:
    pids = workers(two)
    two.proc.send_signal(signal.SIGTERM)
    assert two.proc.wait(timeout=WAIT) == 0
    assert not any(alive(p) for p in pids)
    out = two.output()
    assert out.count(": shutting down") >= 2, out  # each worker ran its own shutdown
    assert "all workers stopped" in out


def test_the_default_is_one_worker_per_cpu(sqlite_url: str, tokens: Path) -> None:
    server = start_server(sqlite_url, tokens)
    try:
        expected = default_processes()
        assert len(workers(server)) == (0 if expected == 1 else expected)
    finally:
        server.stop()


def test_a_worker_that_dies_is_reported_and_replaced(two: ServerProcess) -> None:
    victim = workers(two)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(workers(two)) == 2 and victim not in workers(two), "a replacement worker")
    assert serving(two)
    wait_for(lambda: "died unexpectedly: killed by signal 9" in seen_output(two), "the report")


_seen: dict[int, str] = {}


def seen_output(server: ServerProcess) -> str:
    _seen[server.proc.pid] = _seen.get(server.proc.pid, "") + server.output()
    return _seen[server.proc.pid]


@pytest.mark.slow
def test_a_crash_loop_drains_the_rest_and_exits_1(two: ServerProcess) -> None:
    for kills in range(supervisor.RESTART_BUDGET + 1):
        # Each replacement must be serving before the next kill (one killed while starting is a
        # failed start, which ends the supervisor at once: covered by the same exit status).
        wait_for(lambda k=kills: seen_output(two).count(") serving on port") >= k, "a serving replacement")
        os.kill(workers(two)[-1], signal.SIGKILL)
    assert two.proc.wait(timeout=WAIT) == 1
    assert "worker deaths within 60s: giving up" in seen_output(two)


def test_a_killed_supervisor_takes_its_workers_with_it(two: ServerProcess) -> None:
    pids = workers(two)
    two.proc.kill()
    two.proc.wait(timeout=WAIT)
    wait_for(lambda: not any(alive(p) for p in pids), "workers to follow the supervisor")


def test_a_killed_supervisors_port_is_free_for_a_restart_at_once(sqlite_url: str, tokens: Path) -> None:
    # Its workers, told to stop by PR_SET_PDEATHSIG, sat out the pre-stop delay still listening:
    # a restart within it failed with "address already in use" (fault injection, 2026-12-02).
    first = start_server(sqlite_url, tokens, "--processes", "2", "--pre-stop-delay", "60")
    pids, port = workers(first), first.port
    first.proc.kill()
    first.proc.wait(timeout=WAIT)
    second = _restart_on(port, sqlite_url, tokens)
    try:
        assert serving(second)
    finally:
        second.stop()
    wait_for(lambda: not any(alive(p) for p in pids), "the orphaned workers to exit")


def _restart_on(port: int, sqlite_url: str, tokens: Path) -> ServerProcess:
    """A new supervisor on `port`, tried for a few seconds (the orphans need a moment to hear
    of their supervisor's death): far less than the minute of pre-stop delay they were given."""
    end = time.monotonic() + 5
    while True:
        try:
            return start_server(sqlite_url, tokens, "--processes", "2", "--address", f"127.0.0.1:{port}")
        except AssertionError:
            if time.monotonic() >= end:
                raise
            time.sleep(0.2)


def health_on(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
    return int(reply.status)


def test_every_worker_answers_health_and_all_go_not_serving_on_sigterm(sqlite_url: str, tokens: Path) -> None:
    """Health is per worker: whichever worker a check reaches answers for the service."""
    server = start_server(sqlite_url, tokens, "--processes", "2", "--pre-stop-delay", "60")
    channels = channels_on_every_worker(server)
    try:
        assert {health_on(c) for c in channels} == {health_pb2.HealthCheckResponse.SERVING}
        server.proc.send_signal(signal.SIGTERM)  # NOT_SERVING, still answering for 60 s
        for channel in channels:
            wait_for(lambda c=channel: health_on(c) == health_pb2.HealthCheckResponse.NOT_SERVING, "NOT_SERVING",
                     server=server)  # fmt: skip
        server.proc.send_signal(signal.SIGTERM)  # a second signal skips the rest of the delay
        assert server.proc.wait(timeout=WAIT) == 0
    finally:
        for channel in channels:
            channel.close()
        server.stop()
