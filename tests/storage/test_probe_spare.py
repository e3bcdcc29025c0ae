"""The health probe confirms an outage on its spare connection, at once and bounded by its
timeout, instead of waiting out a new connection's connect timeout first."""

from __future__ import annotations

import time
from typing import Any

from server.storage.probe import Probe

TIMEOUT = 0.2


class _Conn:
    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def close(self) -> None:
        self.closed = True


class _Scripted(Probe):
    """A probe whose connections and answers the test decides: `silent` names the connections
    whose SELECT 1 runs out the timeout, `dropped` those that fail at once."""

    def __init__(self) -> None:
        super().__init__(timeout=TIMEOUT)
        self.opened: list[_Conn] = []
        self.silent: set[str] = set()
        self.dropped: set[str] = set()
        self.refuse = False

    def _connect(self) -> Any:
        if self.refuse:
            raise OSError("connection refused")
        conn = _Conn(f"c{len(self.opened)}")
        self.opened.append(conn)
        return conn

    def _select_one(self, conn: Any) -> None:
        if conn.name in self.silent:
            time.sleep(TIMEOUT)  # the timer cuts it then
            raise OSError("server closed the connection")
        if conn.name in self.dropped:
            raise OSError("server closed the connection")


def test_a_silent_database_is_confirmed_on_the_spare_without_connecting() -> None:
    probe = _Scripted()
    assert probe.check()  # c0 answers; c1 opened as the spare
    assert [c.name for c in probe.opened] == ["c0", "c1"]
    probe.silent = {"c0", "c1"}
    probe.refuse = True  # a new connection would fail too, after its connect timeout
    assert not probe.check()  # c0 silent
    started = time.monotonic()
    assert not probe.check()  # the confirmation: the spare, silent as well
    assert time.monotonic() - started < TIMEOUT * 3
    assert len(probe.opened) == 2  # no connection attempt in between
    assert all(c.closed for c in probe.opened)


def test_a_spare_dropped_while_idle_is_no_outage() -> None:
    probe = _Scripted()
    assert probe.check()
    probe.dropped = {"c0", "c1"}  # the server restarted: both idle connections are gone
    assert probe.check()  # asked again on a new connection, which answers
    assert [c.name for c in probe.opened][:3] == ["c0", "c1", "c2"]


def test_a_refused_database_is_unreachable_at_the_first_probe() -> None:
    probe = _Scripted()
    assert probe.check()
    probe.dropped, probe.refuse = {"c0", "c1"}, True
    assert not probe.check()
    assert probe.last_error == "connection refused"
