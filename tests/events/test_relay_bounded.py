"""The relay's database calls are bounded (server/relay/run.py bounded_call)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from server.relay.run import bounded_call
from server.storage import liveness


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()


def test_a_call_the_database_never_answers_is_cut_and_times_out() -> None:
    ours, peer = socket.socketpair()

    def stuck() -> bytes:
        key = threading.get_ident()
        with liveness._state.lock:
            liveness._state.calls[key] = (_Conn(ours), 0.0)  # as liveness.connection() registers it
        try:
            return ours.recv(1)  # a silent database: nothing comes until the socket is shut
        finally:
            with liveness._state.lock:
                liveness._state.calls.pop(key, None)

    started = time.monotonic()
    with ours, peer, pytest.raises(TimeoutError, match="did not answer within"):
        asyncio.run(bounded_call(stuck, seconds=0.3))
    assert time.monotonic() - started < 3  # the thread was cut loose, not waited for


def test_an_answered_call_returns_its_value() -> None:
    assert asyncio.run(bounded_call(lambda: 42, seconds=5)) == 42
