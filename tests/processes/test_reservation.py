"""A supervisor reserves its port at once after a server that died, and never one in use."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from server.processes.reservation import reserve
from server.transport.listen import ListenError


@pytest.fixture(params=[False, True], ids=["single", "workers"])
def port_in_time_wait(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port whose server side closed a connection first: that socket lingers in TIME-WAIT,
    as a killed server's connections to its clients do. Bound as grpc binds: SO_REUSEADDR, and
    SO_REUSEPORT for a supervisor's workers."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if request.param:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server's side closes first: it goes to TIME-WAIT
        client.recv(1)  # the FIN arrived
        client.close()
    yield port


def test_a_port_left_in_time_wait_is_reserved_at_once(port_in_time_wait: int) -> None:
    # Without SO_REUSEADDR on the probe, a restart after kill -9 failed for ~60 s with
    # "address already in use" (fault injection, 2026-12-01).
    reservation = reserve(f"127.0.0.1:{port_in_time_wait}")
    try:
        assert reservation.port == port_in_time_wait
    finally:
        reservation.release()


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound"])
def test_a_port_another_socket_holds_is_refused(listening: bool) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        if listening:
            other.listen()
        with pytest.raises(ListenError, match="address already in use"):
            reserve(f"127.0.0.1:{other.getsockname()[1]}")
