"""A TCP forwarder on loopback that plays the network between the server and PostgreSQL.

The shared PostgreSQL server is never stopped: the server under test reaches it through this
forwarder, and an outage is the forwarder misbehaving:
- stop():      refuses new connections and cuts the open ones (a database that is down);
- reset():     accepts and closes at once, counting the attempts (a database that refuses);
- blackhole(): accepts and holds, forwarding nothing either way (a partition: the kernel
               acknowledges, the database never answers);
- heal():      cuts what was held and forwards again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlparse

FORWARD, RESET, HOLD = "forward", "reset", "hold"


class Forwarder:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.mode = FORWARD
        self.attempts = 0  # connections accepted (or reset) since start
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            self._cut()

    def reset(self) -> None:
        with self._lock:
            self.mode = RESET
            self._cut()

    def blackhole(self) -> None:
        with self._lock:
            self.mode = HOLD  # open connections stay open; their bytes go nowhere

    def heal(self) -> None:
        with self._lock:
            self.mode = FORWARD
            self._cut()  # what was held is dead to both ends: cut it, as a partition's end would

    def _cut(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.attempts += 1
                mode = self.mode
                if mode == HOLD:
                    self._sockets.append(client)
                    continue
            if mode == RESET:
                client.close()
                continue
            self._connect(listener, client)

    def _connect(self, listener: socket.socket, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)  # an idle pooled connection must not time out here
        with self._lock:
            if self._listener is not listener:  # stopped meanwhile
                client.close()
                upstream.close()
                return
            self._sockets += [client, upstream]
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.mode != HOLD:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def forwarded_database(url: str) -> tuple[Forwarder, str]:
    """A started forwarder to the PostgreSQL server of `url`, and `url` pointed through it."""
    parsed = urlparse(url)
    forwarder = Forwarder((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    forwarder.start()
    return forwarder, parsed._replace(netloc=f"{parsed.username}@127.0.0.1:{forwarder.port}").geturl()
