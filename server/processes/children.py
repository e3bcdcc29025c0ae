"""The supervisor's view of its children and signals: waking on signals, reaping, exit statuses."""

from __future__ import annotations

import os
import select
import signal

RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def default_processes() -> int:
    """The CPUs this process may run on (affinity and cpusets included)."""
    return len(os.sched_getaffinity(0)) or 1


class SignalPipe:
    """Signals become bytes on a pipe (set_wakeup_fd), so the loop waits on one select."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        for fd in (self.read_fd, self.write_fd):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.write_fd)
        for signum in RELAYED:
            signal.signal(signum, lambda *_: None)

    def wait(self, timeout: float | None = None, *, also: tuple[int, ...] = ()) -> tuple[list[int], list[int]]:
        """Signals received, and which of `also` became readable, once anything happens."""
        ready, _, _ = select.select([self.read_fd, *also], [], [], timeout)
        signals = list(os.read(self.read_fd, 512)) if self.read_fd in ready else []
        return signals, [fd for fd in ready if fd != self.read_fd]


def reap() -> tuple[int, int] | None:
    try:
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return None
    return (pid, status) if pid else None


def drained(status: int) -> bool:
    """Exit 0, or killed by our SIGTERM before it installed its handler (it served nothing yet)."""
    return os.waitstatus_to_exitcode(status) in (0, -signal.SIGTERM)


def describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"
