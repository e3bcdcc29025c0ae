"""A COMMIT in flight is never cut loose, and a connection lost while committing is reported as
an outcome in doubt, never as a plain "unavailable" that would tell the caller nothing applied."""

from __future__ import annotations

import threading

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
