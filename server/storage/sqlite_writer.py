"""SQLite's one writer, handed over without SQLite's busy handler: writers queue on a lock.

A waiting writer inside SQLite sleeps in its busy handler, in steps of up to 100 ms, and can
lose the race again and again: long tails under load. So write transactions first take
- a reentrant lock of this process (threads of one process queue on it and are woken the moment
  it is free; reentrant, so a nested write transaction, a savepoint, does not deadlock), and
- the holder of that lock, a lock file beside the database (`<database>-writer.lock`, flock):
  the workers of `serve --processes N` queue on it instead of meeting SQLite's busy handler.
  The kernel drops a dead process's flock, so a worker killed mid-transaction leaves nothing
  held. The file is tried every few hundred microseconds (no flock waits with a timeout), for
  at most the database's busy timeout; then the write fails as SQLite's would, "database is
  locked".

Only this service's writers take the file; another program writing the database still meets
SQLite's own lock (BEGIN IMMEDIATE waits busy_timeout for it), as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

from peewee import OperationalError

log = logging.getLogger("issue_service.storage")
FIRST_PAUSE = 0.0002  # seconds between tries of a held lock file, doubling up to MAX_PAUSE
MAX_PAUSE = 0.002


def lock_file_of(database: str) -> str | None:
    """The lock file beside a database file; None for an in-memory database (one process)."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return os.path.abspath(database.removeprefix("file:").partition("?")[0]) + "-writer.lock"


class SqliteWriter:
    """Held around every write transaction on one SQLite database (storage.db.write_lock)."""

    def __init__(self, database: str, *, wait: float) -> None:
        self.lock = threading.RLock()
        self.path = lock_file_of(database)
        self.wait = wait  # seconds, as SQLite's busy_timeout
        self._depth = 0  # nested holds by the thread holding `lock`
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd: a forked child opens its own

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            if self._depth == 0 and self.path is not None:
                self._take_file()
        except BaseException:
            self.lock.release()
            raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()

    def _take_file(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            # A descriptor inherited across fork shares its open file, and so its flock, with
            # the parent: each process opens its own.
            assert self.path is not None
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:  # e.g. another user's file: SQLite's own lock still serialises
                log.warning("cannot open %s (%s): writers of other processes meet SQLite's busy handler",
                            self.path, exc)  # fmt: skip
                self.path = None
                return
            self._pid = os.getpid()
        deadline = time.monotonic() + self.wait
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(2 * pause, MAX_PAUSE)

    def close(self) -> None:
        """Close the lock file (the pool closes; a later write opens it again)."""
        with self.lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
