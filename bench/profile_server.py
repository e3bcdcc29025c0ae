"""Profile the real server under load with py-spy: where its CPU goes, per function.

    PYTHONPATH=.:generated python -m bench.profile_server URL [resolve|get|assign|bulk] [--seconds 10]

URL is a database the bench data set was seeded into (bench.dataset.seed, or perf_probe.py).
Starts `python -m server serve` on it (as `make bench` does), runs one load scenario from two
client processes, samples the server with `py-spy record --format raw` meanwhile, and prints
the server's CPU per call and the functions with the most samples, self and inclusive. Samples
of threads blocked in a socket wait, a condition or grpc's completion queue are left out, so
the shares are of the server's busy time.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import load
from bench.serverproc import ServerProcess

IDLE_LEAVES = ("wait (psycopg", "wait (threading", "_serve (grpc", "select (selectors", "_wait_once")
OURS = ("server/", "peewee", "psycopg", "logging", "opentelemetry", "prometheus")


def summarize(raw: Path, *, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or frames[-1].startswith(IDLE_LEAVES):  # py-spy writes blank lines too
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"busy samples: {total}", "", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive (ours, psycopg, logging, telemetry):"]
    ours = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in OURS)]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in ours[: 2 * top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_server")
    parser.add_argument("url")
    parser.add_argument("kind", nargs="?", default="resolve", choices=["resolve", "get", "assign", "bulk"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--groups", type=int, default=20_000, help="ids 1..groups exist in the data set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="issues-profile-") as tmp:
        work = Path(tmp)
        # One process: py-spy follows the pid it is given, and a supervisor only waits.
        server = ServerProcess(url=args.url, workdir=work, processes=1)
        server.start()
        try:
            target = load.Target(address=server.address, organization_id=1, groups=args.groups)
            size = 100 if args.kind == "bulk" else 0
            sc = load.Scenario("profile", args.kind, block=(1, 2048), bulk_size=size,
                               seconds=args.seconds + 3, warmup=1.0)  # fmt: skip
            raw = work / "profile.txt"
            pid = str(server.proc.pid if server.proc else 0)
            command = [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "200", "--gil"]
            command += ["--duration", str(int(args.seconds)), "--pid", pid, "--format", "raw"]
            command += ["--nonblocking", "--output", str(raw)]
            spy = subprocess.Popen(command)  # its errors stay visible
            cpu = server.cpu()
            result = load.run(sc, target)
            cpu = server.cpu() - cpu
            spy.wait()
        finally:
            server.stop()
            load.close_pools()
        calls = max(result["calls"], 1)
        print(f"{args.kind}: {result['throughput']:.0f} req/s, server CPU {1000 * cpu / calls:.3f} ms/call "
              f"(py-spy attached), codes {result['codes']}")  # fmt: skip
        print(summarize(raw))


if __name__ == "__main__":
    main()
