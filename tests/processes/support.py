"""Helpers for tests of several worker processes: private connections and where they landed."""

from __future__ import annotations

import grpc
import psutil

from tests.security.support import ServerProcess

MAX_CONNECTIONS = 64  # all of them on one of two workers: 1 in 2**63


def own_connection(target: str) -> grpc.Channel:
    """A channel with its own subchannel pool: its own TCP connection, so possibly its own worker."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def worker_pids(server: ServerProcess) -> list[int]:
    """Live worker pids (zombies waiting to be reaped do not count)."""
    return sorted(c.pid for c in psutil.Process(server.proc.pid).children() if alive(c.pid))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # reaped between a listing and this look
        return False


def connections_per_worker(server: ServerProcess) -> dict[int, int]:
    """Established connections on the served port, per worker pid (the kernel's view)."""
    counts = {}
    for pid in worker_pids(server):
        conns = psutil.Process(pid).net_connections(kind="tcp")
        counts[pid] = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port)
    return counts


def channels_on_every_worker(server: ServerProcess, *, at_least: int = 8) -> list[grpc.Channel]:
    """Open connections until every worker holds one (SO_REUSEPORT hashes each to a worker)."""
    channels: list[grpc.Channel] = []
    while len(channels) < MAX_CONNECTIONS:
        channel = own_connection(server.target)
        grpc.channel_ready_future(channel).result(timeout=60)
        channels.append(channel)
        if len(channels) >= at_least and all(connections_per_worker(server).values()):
            return channels
    spread = connections_per_worker(server)
    for channel in channels:
        channel.close()
    raise AssertionError(f"{MAX_CONNECTIONS} connections never reached every worker: {spread}")
