"""Instructions per call of the real server, counted by valgrind: a measure that this machine's
noise does not move.

    PYTHONPATH=.:generated python -m bench.instructions URL [noop,get,resolve] [--calls 200]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). Starts
`python -m server serve --processes 1` under `valgrind --tool=callgrind` (every thread, C and
Python alike: grpc, the interceptors, the core, psycopg, logging), sends each scenario's calls
one after another from this process, and reads the server's instruction count around them
(`callgrind_control --zero`, then `--dump`). The server's background threads (the event feed's
ticks, the health prober) also run while the calls do; what they execute in the same time with
no calls is measured first and taken off. Instructions are not seconds (a cache miss costs
none), but the same code path gives the same count whatever else the machine does, so a change's
effect shows within a fraction of a percent where timed runs spread by ~10 %. The ratios to the
no-op are what issue 13's CPU target compares. Scratch numbers for BENCHMARKS.md, not a target
of `make bench`. Takes a few minutes (valgrind runs Python ~50x slower).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.serverproc import ACTING_USER, TOKEN, free_port, wait_serving, write_tokens

SCENARIOS = ("noop", "get", "resolve")
WARM_UP = 30  # calls per scenario before counting: imports, prepared statements, caches
IDLE_SECONDS = 5.0
_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _calls(kind: str, address: str, *, first_group: int) -> Callable[[int], Any]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from issues.v1 import issue_service_pb2 as pb
    from issues.v1 import issue_service_pb2_grpc

    channel = grpc.insecure_channel(address)
    issues = issue_service_pb2_grpc.IssueServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    meta = (("authorization", f"Bearer {TOKEN}"), ("x-acting-user-id", ACTING_USER))
    if kind == "noop":
        return lambda k: health.Check(health_pb2.HealthCheckRequest(), timeout=60)
    if kind == "get":
        return lambda k: issues.GetGroup(
            pb.GetGroupRequest(organization_id=1, group_id=1 + (k * 7919) % 90_000), metadata=meta, timeout=60
        )
    patches = (pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED), pb.GroupPatch(status=pb.STATUS_UPDATE_UNRESOLVED))

    def resolve(k: int) -> Any:  # each group resolved, then unresolved: two first touches per pair
        request = pb.UpdateGroupRequest(organization_id=1, group_id=first_group + k // 2, patch=patches[k % 2])
        return issues.UpdateGroup(request, metadata=meta, timeout=60)

    return resolve


class _Counted:
    """The server under callgrind, with its counters zeroed and read on demand."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.address = f"127.0.0.1:{free_port()}"
        self.out = workdir / "callgrind.out"
        tokens = write_tokens(workdir / "tokens.json")
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", "--dump-line=no",
            sys.executable, "-m", "server", "--database-url", url, "serve", "--address", self.address,
            "--tokens", str(tokens), "--processes", "1",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        proc = self.proc
        wait_serving(self.address, alive=lambda: proc.poll() is None, timeout=600, log=f"; see {workdir}/server.log")

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True, capture_output=True)

    def zero(self) -> None:
        self._control("--zero")

    def count(self) -> int:
        """Instructions since the last zero (a dump zeroes them too)."""
        before = set(self.workdir.glob("callgrind.out*"))
        self._control("--dump")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(self.workdir.glob("callgrind.out*")) - before
            if new:
                time.sleep(0.5)  # written in one go, but let it finish
                dump = new.pop()
                total = sum(int(m) for m in _TOTAL.findall(dump.read_text(errors="replace"))[:1])
                dump.unlink()
                return total
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def measure(url: str, kinds: list[str], *, calls: int, first_group: int) -> dict[str, float]:
    """Instructions per call of each kind, background work taken off."""
    with tempfile.TemporaryDirectory(prefix="issues-instr-") as tmp:
        server = _Counted(url, Path(tmp))
        try:
            server.zero()
            time.sleep(IDLE_SECONDS)
            idle_rate = server.count() / IDLE_SECONDS
            per_call = {}
            for kind in kinds:
                call = _calls(kind, server.address, first_group=first_group)
                for k in range(WARM_UP):
                    call(calls + k)  # past the counted calls' groups
                server.zero()
                start = time.monotonic()
                for k in range(calls):
                    call(k)
                elapsed = time.monotonic() - start
                per_call[kind] = (server.count() - idle_rate * elapsed) / calls
            per_call["idle per second"] = idle_rate
            return per_call
        finally:
            server.stop()


def require_valgrind() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")


def dump_total(text: str) -> int | None:
    """The instruction count a callgrind dump's summary line gives, or None before it is written."""
    found = _TOTAL.search(text)
    return None if found is None else int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("kinds", nargs="?", default=",".join(SCENARIOS))
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--first-group", type=int, default=20_001,
                        help="resolve toggles groups from here (a block no other scenario touches)")  # fmt: skip
    args = parser.parse_args()
    require_valgrind()
    counts = measure(args.url, args.kinds.split(","), calls=args.calls, first_group=args.first_group)
    noop = counts.get("noop")
    for kind, value in counts.items():
        ratio = f"  {value / noop:5.2f}x the no-op" if noop and kind in SCENARIOS and kind != "noop" else ""
        print(f"{kind:16} {value:14,.0f} instructions{ratio}")


if __name__ == "__main__":
    main()
