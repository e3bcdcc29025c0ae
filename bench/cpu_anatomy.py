"""Where a loaded call's server CPU goes: by calls in flight, and by server thread.

    PYTHONPATH=.:generated python -m bench.cpu_anatomy URL [noop,get,resolve] [--seconds 3]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). Starts the
real server (`serve`, the default process count), then for each scenario:
- the server's CPU per call with 1, 2, 4, 8 and 24 calls in flight (closed loop);
- at 24 in flight (the bench's load), each kind of server thread's CPU and voluntary and
  involuntary context switches per call. Python does not name its threads for the kernel, so
  for this run a sitecustomize on the server's PYTHONPATH gives each thread its Python name
  (prctl): RPC workers ("rpc"), grpc's polling thread ("Thread-1 (_serve)"), the event feed...
Scratch numbers for BENCHMARKS.md, not a target of `make bench`.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
from pathlib import Path

from bench import load
from bench.serverproc import ServerProcess, process_tree, stat_cpu_seconds

IN_FLIGHT = ((1, 1), (2, 1), (2, 2), (2, 4), (2, 12))  # (client processes, calls each)
NAME_THREADS = """import ctypes, threading
_libc, _bootstrap = ctypes.CDLL(None), threading.Thread._bootstrap_inner
def _named(self):
    _libc.prctl(15, (self.name or "thread")[:15].encode(), 0, 0, 0)  # PR_SET_NAME
    return _bootstrap(self)
threading.Thread._bootstrap_inner = _named
"""


def thread_counters(pid: int) -> collections.Counter[tuple[str, str]]:
    """(thread kind, counter) -> total over the server's processes: CPU seconds, vol, non(vol)."""
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for proc in process_tree(pid):
        for tid in os.listdir(f"/proc/{proc}/task"):
            base = f"/proc/{proc}/task/{tid}"
            try:
                kind = Path(f"{base}/comm").read_text().strip().rstrip("0123456789_")
                cpu = stat_cpu_seconds(Path(f"{base}/stat"))
                status = Path(f"{base}/status").read_text().splitlines()
            except OSError:  # the thread ended meanwhile
                continue
            out[(kind, "cpu")] += cpu
            for line in status:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    out[(kind, line.split(":")[0][:3])] += int(line.split()[1])
    return out


def by_concurrency(server: ServerProcess, target: load.Target, kind: str, seconds: float) -> None:
    for procs, conc in IN_FLIGHT:
        sc = load.Scenario(kind, kind, block=(30001, 400), seconds=seconds, warmup=0.5, procs=procs, conc=conc)
        measured = load.run_measured(sc, target, server_cpu=server.cpu)
        cpu = measured.per_call(measured.raw["calls"])
        server_ms, postgres_ms = cpu["server_cpu_ms_per_call"], cpu["postgres_cpu_ms_per_call"]
        print(f"  {procs * conc:3d} in flight: {measured.raw['throughput']:7.0f} req/s, server CPU "
              f"{server_ms:.3f} ms/call, PostgreSQL {postgres_ms:.3f}")  # fmt: skip


def by_thread(server: ServerProcess, target: load.Target, kind: str, seconds: float) -> None:
    assert server.proc is not None
    sc = load.Scenario(kind, kind, block=(40001, 400), seconds=seconds, warmup=0.5)
    load.spawn_clients(sc.procs)
    before = thread_counters(server.proc.pid)
    calls = max(load.run(sc, target)["calls"], 1)
    after = thread_counters(server.proc.pid)
    for name in sorted({k for k, _ in after}):
        cpu, vol, inv = (after[(name, c)] - before[(name, c)] for c in ("cpu", "vol", "non"))
        if cpu or vol or inv:
            print(f"  {name:20s} CPU {cpu * 1000 / calls:6.3f} ms/call, switches/call: "
                  f"voluntary {vol / calls:5.2f}, involuntary {inv / calls:5.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_anatomy")
    parser.add_argument("url")
    parser.add_argument("kinds", nargs="?", default="noop,get,resolve")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="issues-anatomy-") as tmp:
        work = Path(tmp)
        (work / "sitecustomize.py").write_text(NAME_THREADS)
        os.environ["PYTHONPATH"] = os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")])
        server = ServerProcess(url=args.url, workdir=work)
        server.start()
        try:
            target = load.Target(address=server.address, organization_id=1, groups=100_000)
            for kind in args.kinds.split(","):
                print(f"{kind}: server CPU per call by calls in flight")
                by_concurrency(server, target, kind, args.seconds)
                print(f"{kind}: per server thread, 24 in flight")
                by_thread(server, target, kind, args.seconds)
        finally:
            server.stop()
            load.close_pools()


if __name__ == "__main__":
    main()
