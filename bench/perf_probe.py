"""Single-threaded, in-process cost of the hot paths: ms, CPU and SQL statements per call.

CPU is this process's, and on PostgreSQL also every postgres process's (a quiet machine's are
the probe's). "get_group, 1 in 10 after a failed update" interleaves an UpdateGroup of a group
that does not exist (NOT_FOUND, its transaction rolled back) before every tenth GetGroup: a
ROLLBACK must not cost the next calls their prepared statements.

    PYTHONPATH=. python bench/perf_probe.py sqlite:////tmp/probe.db [--groups 100000]
    PYTHONPATH=. python bench/perf_probe.py postgresql://postgres@127.0.0.1:5432/probe

Seeds with bench.dataset (the harness's data set) unless --no-seed, then calls the core
directly (no gRPC): GetGroup, UpdateGroup resolve/unresolve toggles, bulk of 1000 by ids.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.serverproc import postgres_cpu
from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.core.errors import NotFound
from server.storage.db import is_postgres, make_database
from server.storage.models import db

ORG = 1
USER = 1
CALLER = Caller("probe", frozenset({"event:read", "event:write"}), USER)


def _measure(name: str, calls: int, fn: Callable[[int], Any]) -> None:
    seen: list[str] = []
    hook = lambda event: seen.append(event.sql)  # noqa: E731
    db.obj.query_hooks.append(hook)
    times = []
    pg = postgres_cpu() if is_postgres() else 0.0
    cpu = time.process_time()
    try:
        for i in range(calls):
            start = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        db.obj.query_hooks.remove(hook)
    cpu_ms = (time.process_time() - cpu) * 1000 / calls
    pg_ms = f"{(postgres_cpu() - pg) * 1000 / calls:7.2f} ms PostgreSQL CPU " if is_postgres() else ""
    p50 = statistics.median(times)
    print(f"{name:40} {p50:8.2f} ms p50 {statistics.mean(times):8.2f} ms mean "
          f"{cpu_ms:7.2f} ms CPU {pg_ms}{len(seen) / calls:5.1f} SQL/call ({calls} calls)")  # fmt: skip


def run(url: str, *, groups: int, seed: bool) -> None:
    if seed:
        from bench.dataset import FULL, Shape
        from bench.dataset import seed as fill

        shape = Shape(FULL.projects, groups, FULL.users, FULL.teams, FULL.releases)
        print("seeded", fill(url, shape))
    make_database(url, workers=2)
    status = {0: "resolved", 1: "unresolved"}

    def get(i: int) -> None:
        update.get_group(caller=CALLER, organization_id=ORG, group_id=1 + (i * 7919) % groups)

    def toggle(i: int) -> None:
        cmd = UpdateCommand(status=status[i % 2])
        update.update_group(caller=CALLER, organization_id=ORG, group_id=1 + (i // 2) % 1000,
                            command=cmd)  # fmt: skip

    def get_after_failures(i: int) -> None:
        if i % 10 == 0:
            with contextlib.suppress(NotFound):
                update.update_group(caller=CALLER, organization_id=ORG, group_id=groups + 1_000_000,
                                    command=UpdateCommand(status="resolved"))  # fmt: skip
        get(i)

    def bulk(i: int) -> None:
        ids = tuple(range(2001, 3001)) if i % 4 < 2 else tuple(range(3001, 4001))
        spec = Selection(organization_id=ORG, group_ids=ids)
        update.bulk_update(caller=CALLER, selection_spec=spec,
                           command=UpdateCommand(status=status[i % 2]))  # fmt: skip

    _measure("get_group", 400, get)
    _measure("get_group, 1 in 10 after a failed update", 400, get_after_failures)
    _measure("update_group resolve/unres.", 400, toggle)
    _measure("bulk 1000 resolve/unres.", 12, bulk)
    db.obj.close_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--no-seed", action="store_true")
    args = parser.parse_args()
    run(args.url, groups=args.groups, seed=not args.no_seed)


if __name__ == "__main__":
    main()
