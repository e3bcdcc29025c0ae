"""Two or more variants of the real server, up at once and loaded in alternated rounds.

    PYTHONPATH=.:generated python -m bench.ab URL VARIANT [VARIANT ...] [--kinds noop,get,resolve]
        [--rounds 4] [--seconds 3] [--first-touch]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). A VARIANT
is a whitespace-separated list of `serve` flags, `url=OTHER_URL` (this variant serves another
database, e.g. a copy with a different schema: `createdb -T`), `env=NAME=VALUE`,
`python=PATH` (another interpreter, with the project installed in its venv) and `tree=PATH`
(another checkout of this repository, e.g. `git worktree add ../old HEAD~3`: its server code,
run from its root; PYTHONPATH alone is not enough, since `python -m server` imports from the
current directory first); `-` is the server as `make bench` starts it. Example:
`- "--workers 4"`.

The machine's speed drifts by more than most changes are worth (BENCHMARKS.md: a no-op
between 2,200 and 7,600 req/s across days), so a change is judged by variants measured in the
same minutes, round after round, not by runs an hour apart. Each round runs every kind on every
variant in turn; the medians over the rounds are printed last.

Resolves toggle groups of the bench's first block (ids 1..20,000; each variant its own part of
it unless they serve different databases, a different part every round: a group toggled more
often has more activity and history rows, which makes its updates dearer). With --first-touch
every round takes fresh ids, from 60,001 on, so every resolve is the group's first change, as in
`make bench`'s resolve scenario.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.serverproc import ServerProcess

GROUPS = 100_000
FIRST_TOUCH_FROM = 60_001  # make bench's scenarios and perf_probe's runs stay below this id
FIRST_TOUCH_IDS = 5_000  # per round and variant: more than a 3 s round resolves


@dataclass(frozen=True)
class Variant:
    label: str
    url: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    executable: str
    cwd: str | None = None


def parse_variant(text: str, *, url: str) -> Variant:
    args, env, executable, cwd = [], [], sys.executable, None
    for word in [] if text == "-" else shlex.split(text):
        if word.startswith("tree="):
            cwd = os.path.abspath(word.removeprefix("tree="))
            env.append(("PYTHONPATH", f"{cwd}:{cwd}/generated"))
        elif word.startswith("python="):
            executable = word.removeprefix("python=")
        elif word.startswith("url="):
            url = word.removeprefix("url=")
        elif word.startswith("env="):
            name, _, value = word.removeprefix("env=").partition("=")
            env.append((name, value))
        else:
            args.append(word)
    return Variant(label=text, url=url, args=tuple(args), env=tuple(env), executable=executable, cwd=cwd)


def resolve_block(*, index: int, round_no: int, variants: int, shared_db: bool, first_touch: bool) -> tuple[int, int]:
    if first_touch:
        # Separate databases: the same ids on each (both first touches); one database: disjoint.
        slot = round_no * variants + index if shared_db else round_no
        first = FIRST_TOUCH_FROM + slot * FIRST_TOUCH_IDS
        if first + FIRST_TOUCH_IDS - 1 > GROUPS:
            raise SystemExit("--first-touch: not enough untouched groups for these rounds and variants")
        return first, FIRST_TOUCH_IDS
    # Toggled groups grow their activity and history; a variant kept on one part would pay for
    # that part's past. Every round moves each variant to the next part.
    part = 20_000 // 4
    return 1 + ((index + round_no) % 4) * part if shared_db else 1, part


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("url")
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--kinds", default="noop,get,resolve")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--first-touch", action="store_true")
    args = parser.parse_args()
    variants = [parse_variant(v, url=args.url) for v in args.variants]
    shared_db = len({v.url for v in variants}) == 1
    results: dict[tuple[str, int], list[tuple[float, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="issues-ab-") as tmp:
        servers = []
        for i, v in enumerate(variants):
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            server = ServerProcess(url=v.url, workdir=workdir, extra_args=v.args, extra_env=v.env,
                                   executable=v.executable, cwd=v.cwd)  # fmt: skip
            server.start()
            servers.append(server)
        try:
            for round_no in range(args.rounds):
                for kind in args.kinds.split(","):
                    for i, (v, server) in enumerate(zip(variants, servers, strict=True)):
                        block = (1, GROUPS)
                        if kind != "get":
                            block = resolve_block(index=i, round_no=round_no, variants=len(variants),
                                                  shared_db=shared_db, first_touch=args.first_touch)  # fmt: skip
                        scenario = load.Scenario(name=kind, kind=kind, block=block, seconds=args.seconds, warmup=1.0)
                        target = load.Target(address=server.address, organization_id=1, groups=GROUPS)
                        measured = load.run_measured(scenario, target, server_cpu=server.cpu, settle=0.2)
                        # Warm-up calls are not counted by run(): scale them in, as CPU covers them.
                        calls = measured.raw["calls"] * (args.seconds + 1.0) / args.seconds
                        per_call = measured.per_call(calls)
                        results.setdefault((kind, i), []).append((measured.raw["throughput"], per_call))
                        print(round_no, kind, v.label, round(measured.raw["throughput"]), per_call,
                              measured.raw["codes"], flush=True)  # fmt: skip
        finally:
            for server in servers:
                server.stop()
            load.close_pools()
    print("medians:")
    for (kind, i), rows in sorted(results.items()):
        rate = statistics.median(r for r, _ in rows)
        cpu = {k: round(statistics.median(c[k] for _, c in rows), 3) for k in rows[0][1]}
        print(f"  {kind:8s} {variants[i].label!r:40s} {rate:8.0f} req/s  {cpu}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
