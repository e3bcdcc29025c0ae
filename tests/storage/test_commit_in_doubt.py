"""A COMMIT in flight is not cut loose with the other calls (only once it has waited past
COMMIT_WAIT on an unreachable database), and a connection lost while committing is reported as an
outcome in doubt, never as a plain "unavailable" that would tell the caller nothing applied."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from peewee import OperationalError

from server.core import unit_of_work
from server.core.errors import Unavailable
from server.storage import liveness


def test_a_committing_call_is_not_cut_loose() -> None:
    key = threading.get_ident()
    sentinel = object()
    with liveness._state.lock:
        liveness._state.calls[key] = (sentinel, 0.0)
    try:
        with liveness.committing(), liveness._state.lock:
            assert key not in liveness._state.calls  # abort_in_flight cannot reach it
        with liveness._state.lock:
            assert liveness._state.calls[key][0] is sentinel  # watched again afterwards
    finally:
        with liveness._state.lock:
            liveness._state.calls.pop(key, None)


def test_a_connection_lost_while_committing_is_an_outcome_in_doubt() -> None:
    with pytest.raises(OperationalError), liveness.committing():
        raise OperationalError("server closed the connection unexpectedly")
    error = unit_of_work._translate(OperationalError("server closed the connection unexpectedly"))
    assert isinstance(error, Unavailable)
    assert error.reason == "COMMIT_OUTCOME_UNKNOWN"
    assert "request_id" in str(error)


def test_a_connection_lost_before_committing_is_plainly_unavailable() -> None:
    liveness.commit_in_doubt()
    error = unit_of_work._translate(OperationalError("server closed the connection unexpectedly"))
    assert isinstance(error, Unavailable)
    assert error.reason == "DATABASE_UNAVAILABLE"


class _Conn:
    """A connection stand-in whose socket is one end of a pair: the test reads the other end."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()


@pytest.mark.parametrize(("waited", "cut"), [(liveness.COMMIT_WAIT + 1, True), (0.0, False)])
def test_a_commit_waiting_on_an_unreachable_database_is_cut_past_its_wait(
    monkeypatch: pytest.MonkeyPatch, waited: float, cut: bool
) -> None:
    # TCP's timeouts never end a COMMIT when the server's kernel still acknowledges: fault
    # injection saw one wait out a 20 s silence. Each failed probe cuts those past COMMIT_WAIT.
    ours, peer = socket.socketpair()
    key = threading.get_ident()
    monkeypatch.setattr(liveness, "_drop_idle_connections", lambda: None)  # not this test's pool
    with ours, peer:
        with liveness._state.lock:
            liveness._state.calls[key] = (_Conn(ours), 0.0)
        try:
            with liveness.committing():
                with liveness._state.lock:
                    conn, _since = liveness._state.commits[key]
                    liveness._state.commits[key] = (conn, time.monotonic() - waited)
                liveness.set_reachable(False)
                peer.settimeout(0.5)
                if cut:
                    assert peer.recv(1) == b""  # shut down: the driver's wait fails at once
                else:
                    with pytest.raises(TimeoutError):
                        peer.recv(1)
        finally:
            liveness.set_reachable(True)
            with liveness._state.lock:
                liveness._state.calls.pop(key, None)
