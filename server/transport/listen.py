"""Why a listen address was refused: grpc reports only "Failed to bind", users need the cause."""

from __future__ import annotations

import errno
import socket

LISTEN_FAILED = 1  # exit status of `serve` when its address cannot be bound


class ListenError(Exception):
    """The server could not bind its address; the message says why and what to do."""

    def __init__(self, address: str, *, reuse_port: bool = False, reason: str | None = None) -> None:
        self.address = address
        reason = reason or diagnose(address, reuse_port=reuse_port)
        super().__init__(f"cannot listen on {address}: {reason}")

    @classmethod
    def from_os_error(cls, address: str, exc: OSError) -> ListenError:
        return cls(address, reason=explain(exc))


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def diagnose(address: str, *, reuse_port: bool = False) -> str:
    """Bind a plain socket the way grpc would have, and name the errno it meets."""
    try:
        host, port = split_address(address)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (ValueError, OSError) as exc:
        return f"not a usable host:port ({exc})"
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                return explain(exc)
    return "the port could not be bound (set GRPC_VERBOSITY=debug for grpc's reason)"


def explain(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (is another server running on this port?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)
