"""Reserve a port for one supervisor's workers, and only theirs.

Workers share the port with SO_REUSEPORT, but Linux lets ANY process of the same user join such
a group, so a second supervisor would silently take half the connections. Three steps keep it out:

1. a lock file per port (flock, held for the supervisor's life): a second issue-service
   supervisor on the same port stops here, race-free;
2. an exclusive bind (no SO_REUSEPORT): fails if anything holds the port, such as a
   single-process server or another program; it also resolves port 0 once, for all workers. It
   sets SO_REUSEADDR, which lets it past connections of a server that just died lingering in
   TIME-WAIT (for a minute after a kill -9 with clients connected) and nothing else: a socket
   listening on the port, or bound without SO_REUSEADDR, still refuses it;
3. a placeholder socket bound WITH SO_REUSEPORT (never listening, so it takes no connections)
   held for the supervisor's life: the port stays ours while workers restart, and exclusive
   binders (single-process servers, other programs) are refused. SO_REUSEADDR too, for the same
   TIME-WAIT leftovers as the probe.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from server.transport.listen import ListenError, split_address


@dataclass
class Reservation:
    host: str
    port: int
    lock_fd: int
    placeholder: socket.socket

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def fds(self) -> list[int]:
        """File descriptors a forked worker must close (the supervisor keeps its own)."""
        return [self.lock_fd, self.placeholder.fileno()]

    def release(self) -> None:
        self.placeholder.close()
        os.close(self.lock_fd)


def lock_path(port: int) -> Path:
    """Per user: another user's sockets can never join our SO_REUSEPORT group anyway."""
    return Path(tempfile.gettempdir()) / f"issue-service-{os.getuid()}-port-{port}.lock"


def reserve(address: str) -> Reservation:
    """Reserve `address` for this supervisor or raise ListenError saying why not."""
    host, port = split_address(address)
    family, sockaddr = _resolve(host, port, address)
    probe = _exclusive_bind(family, sockaddr, address)
    port = probe.getsockname()[1]
    try:
        lock_fd = _lock(port, address)
    finally:
        probe.close()  # the lock now keeps other supervisors out; the placeholder takes over
    try:
        placeholder = _placeholder(family, (sockaddr[0], port, *sockaddr[2:]), address)
    except BaseException:
        os.close(lock_fd)
        raise
    return Reservation(host=host, port=port, lock_fd=lock_fd, placeholder=placeholder)


def _resolve(host: str, port: int, address: str) -> tuple[int, tuple[object, ...]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ListenError(address, reason=f"not a usable host:port ({exc})") from exc
    family, _kind, _proto, _name, sockaddr = infos[0]
    return family, sockaddr


def _exclusive_bind(family: int, sockaddr: tuple[object, ...], address: str) -> socket.socket:
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(sockaddr)
    except OSError as exc:
        probe.close()
        raise ListenError.from_os_error(address, exc) from exc
    return probe


def _lock(port: int, address: str) -> int:
    fd = os.open(lock_path(port), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        reason = f"address already in use (another issue-service supervisor holds {lock_path(port)})"
        raise ListenError(address, reason=reason) from None
    return fd


def _placeholder(family: int, sockaddr: tuple[object, ...], address: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(sockaddr)
    except OSError as exc:  # taken between the probe and here
        sock.close()
        raise ListenError.from_os_error(address, exc) from exc
    return sock
