"""Database faults: with PostgreSQL unreachable, calls fail fast with UNAVAILABLE and health says
NOT_SERVING; when it comes back, the same server process recovers by itself.

The shared PostgreSQL server is never stopped: the server under test reaches it through a small
TCP forwarder (tests/forwarder.py), and the outage is the forwarder misbehaving.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.core import update
from server.core.errors import Unavailable
from server.transport import errors
from server.transport.app import SERVICE_NAME
from server.transport.health_watch import NOT_SERVING, SERVING, HealthWatch
from tests.conftest import BACKEND, PG_ADMIN_URL, _pg_admin, metadata
from tests.forwarder import Forwarder
from tests.security.support import ServerProcess, migrate, start_server, write_tokens

WAIT = 60.0
SECRET = "fault-secret"


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll until `check` holds; the bound only stops a broken server from hanging the suite."""
    end = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.fixture()
def proxied_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if BACKEND != "postgres":
        pytest.skip("database outage is simulated against PostgreSQL (TEST_BACKEND=postgres)")
    name = f"issues_fault_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    migrate(f"{base}/{name}")
    forwarder = Forwarder(("127.0.0.1", 5432))
    forwarder.start()
    tokens = tmp_path / "tokens.json"
    write_tokens(tokens, {"fault": (SECRET, ["event:read", "event:write"])})
    url = f"postgresql://postgres@127.0.0.1:{forwarder.port}/{name}"
    server: ServerProcess | None = None
    try:
        server = start_server(url, tokens, "--health-interval", "0.5")
        yield {"server": server, "forwarder": forwarder}
    finally:
        if server is not None:
            server.stop()
        forwarder.stop()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def health_of(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    return stub.Check(request, timeout=10).status  # type: ignore[no-any-return]


def get_group(channel: grpc.Channel) -> grpc.StatusCode:
    stub = issue_service_pb2_grpc.IssueServiceStub(channel)
    request = pb.GetGroupRequest(organization_id=1, group_id=1)
    try:
        stub.GetGroup(request, metadata=(("authorization", f"Bearer {SECRET}"),), timeout=15)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.db
def test_an_outage_gives_unavailable_and_not_serving_then_the_server_recovers(
    proxied_server: dict[str, Any],
) -> None:
    server, forwarder = proxied_server["server"], proxied_server["forwarder"]
    with grpc.insecure_channel(server.target) as channel:
        wait_for(lambda: health_of(channel) == SERVING, "SERVING at start")
        # An empty database: a NOT_FOUND answer proves the query reached PostgreSQL.
        assert get_group(channel) == grpc.StatusCode.NOT_FOUND

        forwarder.stop()
        started = time.monotonic()
        assert get_group(channel) == grpc.StatusCode.UNAVAILABLE  # not DEADLINE_EXCEEDED (15 s)
        assert time.monotonic() - started < 15
        wait_for(lambda: health_of(channel) == NOT_SERVING, "NOT_SERVING during the outage")

        forwarder.start()  # same port: the server's URL is unchanged
        wait_for(lambda: health_of(channel) == SERVING, "SERVING after the outage")
        assert get_group(channel) == grpc.StatusCode.NOT_FOUND
    assert server.proc.poll() is None  # recovered without a restart


class FakeServicer:
    def __init__(self) -> None:
        self.status: dict[str, int] = {}

    def set(self, name: str, status: int) -> None:
        self.status[name] = status


def test_the_watch_reports_the_probe_result_for_every_service() -> None:
    servicer = FakeServicer()
    up = [False]
    watch = HealthWatch(servicer=servicer, services=("", "x"), probe=lambda: up[0])  # type: ignore[arg-type]
    assert watch.check_now() is False
    assert servicer.status == {"": NOT_SERVING, "x": NOT_SERVING}
    up[0] = True
    assert watch.check_now() is True
    assert servicer.status == {"": SERVING, "x": SERVING}


def test_an_unavailable_call_flips_health_at_once_and_a_probe_restores_it() -> None:
    servicer = FakeServicer()
    gate = threading.Event()
    gate.set()

    def probe() -> bool:
        gate.wait(WAIT)  # the re-probe after a report waits here until the test has looked
        return True

    watch = HealthWatch(servicer=servicer, services=("",), interval=3600, probe=probe)
    watch.start()
    try:
        assert servicer.status[""] == SERVING
        gate.clear()
        watch.report_unavailable()
        assert servicer.status[""] == NOT_SERVING  # at once, before any probe ran
        gate.set()
        wait_for(lambda: servicer.status[""] == SERVING, "the woken probe (interval is an hour)")
    finally:
        gate.set()
        watch.stop()


def test_a_call_that_finds_the_database_unreachable_reports_it(
    stub: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[str] = []
    listener = lambda: reports.append("down")  # noqa: E731

    def unreachable(**_: Any) -> Any:
        raise Unavailable("database unavailable; retry later", reason="DATABASE_UNAVAILABLE")

    monkeypatch.setattr(update, "get_group", unreachable)
    errors.on_unavailable(listener)
    try:
        with pytest.raises(grpc.RpcError) as info:
            stub.GetGroup(pb.GetGroupRequest(organization_id=1, group_id=1), metadata=metadata(), timeout=10)
    finally:
        errors.forget_unavailable_listener(listener)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reports == ["down"]


def test_the_in_process_server_reports_serving(running: Any) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        # A test above reported an outage to every watch; this server's probe soon clears it.
        wait_for(lambda: health_of(channel) == SERVING, "the in-process server to serve")


def _changes(verdicts: list[bool]) -> list[bool]:
    return [v for i, v in enumerate(verdicts) if i == 0 or verdicts[i - 1] != v]


def test_reports_during_an_outage_add_no_probes_and_the_first_good_probe_restores_serving() -> None:
    servicer = FakeServicer()
    up, verdicts = [True], []
    watch = HealthWatch(servicer=servicer, services=("",), interval=3600, max_backoff=0.2,  # type: ignore[arg-type]
                        probe=lambda: up[0], breaker=verdicts.append)  # fmt: skip
    watch.start()
    try:
        up[0] = False
        watch.report_unavailable()  # wakes the prober once: it confirms the outage
        wait_for(lambda: _changes(verdicts) == [True, False], "the woken probe to open the breaker")
        probes = watch.probes
        for _ in range(1000):
            watch.report_unavailable()  # already down: no flip, no wake-up, no log line
        time.sleep(0.5)
        assert watch.probes - probes <= 0.5 / 0.1 + 1  # the backoff's own pace, not 1000 probes
        up[0] = True
        wait_for(lambda: servicer.status[""] == SERVING, "the next backoff probe")
        assert _changes(verdicts) == [True, False, True]
        # Told after every failed probe, not only at the change: a COMMIT stuck on the silent
        # database is cut by one of those (liveness.abort_commits).
        assert verdicts.count(False) >= 2
    finally:
        watch.stop()
