"""One forked worker: the ordinary single-process `serve`, told to share the port and report in."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from server.transport.app import Config, Running

log = logging.getLogger("issue_service.processes")
Tracer = Callable[[], Any]  # builds the worker's tracer provider (or None when tracing is off)
_PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    index: int
    pid: int
    ready_fd: int  # read end: one JSON line when serving, EOF if it died first
    metrics_port: int | None = None


def worker_config(config: Config) -> Config:
    """Workers join the SO_REUSEPORT group; their metrics stay private (the supervisor exposes);
    each knows its supervisor (called in the forked child), to notice being orphaned."""
    metrics = None if config.metrics_port is None else 0
    return replace(
        config, reuse_port=True, metrics_port=metrics, metrics_address="127.0.0.1", supervisor_pid=os.getppid()
    )


def fork_worker(*, index: int, config: Config, address: str, inherited: list[int], tracer: Tracer | None) -> Worker:
    """Fork before any grpc object exists in the parent (grpc is not fork-safe afterwards)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()  # or the child would write the parent's buffered lines a second time
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run(index=index, config=config, address=address, ready_fd=write_fd, inherited=inherited, tracer=tracer)
    os.close(write_fd)
    return Worker(index=index, pid=pid, ready_fd=read_fd)


def _run(  # noqa: PLR0913  (one child's whole context, passed once)
    *, index: int, config: Config, address: str, ready_fd: int, inherited: list[int], tracer: Tracer | None
) -> NoReturn:
    code = 1
    try:
        _become_worker(inherited)
        if tracer is not None:  # built after the fork: an OTLP exporter may hold a gRPC channel
            config = replace(config, tracer_provider=tracer())
        from server.transport.app import serve

        def ready(running: Running) -> None:
            _report(ready_fd, index=index, running=running)

        code = serve(worker_config(config), address, on_ready=ready)
    except BaseException:  # the child must never return into the supervisor's code
        log.exception("worker %d crashed", index)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _become_worker(inherited: list[int]) -> None:
    """Drop the supervisor's signal handling and descriptors; die with the supervisor."""
    parent = os.getppid()
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    for fd in inherited:
        os.close(fd)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """A SIGKILLed supervisor must not leave workers serving the port on their own (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _report(ready_fd: int, *, index: int, running: Running) -> None:
    log.info("worker %d (pid %d) serving on port %d", index, os.getpid(), running.port)
    message = {"pid": os.getpid(), "port": running.port, "metrics_port": running.metrics_port}
    os.write(ready_fd, (json.dumps(message) + "\n").encode())
    os.close(ready_fd)
