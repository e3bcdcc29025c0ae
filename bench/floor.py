"""The floor of a bulk resolve: what PostgreSQL alone needs for the same statements.

The harness captures the statements (with their parameters) of one bulk resolve and one bulk
unresolve of 1000 ids, run in-process through the core, then replays them through a bare
psycopg connection (no Python of ours between statements) and times each replayed call. The
server's time for the same call, divided by this floor, is what our Python adds.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.storage.db import SESSION_OPTIONS, make_database
from server.storage.models import db

Statement = tuple[str, Any]
CALLER = Caller("floor", frozenset({"event:read", "event:write"}), None)


def capture(url: str, *, organization_id: int, user_id: int, ids: list[int]) -> dict[str, Any]:
    """Statements of one bulk resolve and one unresolve of `ids`, and their in-process times."""
    make_database(url, workers=2)
    caller = Caller("floor", CALLER.scopes, user_id)
    calls: dict[str, list[Statement]] = {}
    spent: dict[str, float] = {}
    for status in ("resolved", "unresolved", "resolved", "unresolved"):  # the first pair warms up
        seen: list[Statement] = []
        hook = lambda event, seen=seen: seen.append((event.sql, event.params))  # noqa: E731
        db.obj.query_hooks.append(hook)
        start = time.perf_counter()
        try:
            spec = Selection(organization_id=organization_id, group_ids=tuple(ids))
            update.bulk_update(caller=caller, selection_spec=spec, command=UpdateCommand(status=status))
        finally:
            db.obj.query_hooks.remove(hook)
        spent[status] = (time.perf_counter() - start) * 1000
        calls[status] = seen
    db.obj.close_all()
    return {"statements": calls, "in_process_ms": spent}


def replay(url: str, workloads: list[dict[str, list[Statement]]], *, rounds: int = 5) -> dict[str, Any]:
    """Median ms per call of the captured statements through bare psycopg loops, one connection
    per workload, all replaying at the same time (their ids are disjoint).

    The server's bulk figure is measured with as many bulk calls in flight as there are client
    processes; one workload per call in flight is PostgreSQL alone under that same concurrency.
    """
    import threading

    import psycopg

    times: list[float] = []
    start = threading.Barrier(len(workloads))

    def worker(calls: dict[str, list[Statement]]) -> None:
        # The server's session settings (jit=off above all), so the floor runs the same plans.
        with psycopg.connect(url, autocommit=True, options=SESSION_OPTIONS) as conn:
            start.wait()
            for _ in range(rounds):
                for statements in calls.values():
                    began = time.perf_counter()
                    for sql, params in statements:
                        conn.execute(sql, params)  # BEGIN and COMMIT were captured too
                    times.append((time.perf_counter() - began) * 1000)  # list.append is atomic

    threads = [threading.Thread(target=worker, args=(calls,)) for calls in workloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"floor_ms_p50": round(statistics.median(times), 2), "replayed_calls": len(times)}


def measure(url: str, *, organization_id: int, user_id: int, id_blocks: list[list[int]]) -> dict[str, Any]:
    """The floor alone (first block) and with one replay per block at once."""
    captured = [capture(url, organization_id=organization_id, user_id=user_id, ids=ids) for ids in id_blocks]
    floor = replay(url, [captured[0]["statements"]])
    together = replay(url, [c["statements"] for c in captured])
    in_process = statistics.median(captured[0]["in_process_ms"].values())
    return {
        **floor,
        "in_flight": len(id_blocks),
        "floor_in_flight_ms_p50": together["floor_ms_p50"],
        "statements_per_call": max(len(s) for s in captured[0]["statements"].values()),
        "in_process_ms_p50": round(in_process, 2),
        "in_process_x_floor": round(in_process / floor["floor_ms_p50"], 2),
    }
