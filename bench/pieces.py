"""Instructions of the pieces of a call, in-process: where a GetGroup's or a resolve's cost sits.

    PYTHONPATH=.:generated python -m bench.pieces URL [--calls 200]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). Runs itself
again under valgrind's callgrind and counts, for each piece, the instructions of `--calls` runs
of it (`callgrind_control --zero` before, `--dump` after), less those of an empty loop of as many
turns. Instructions are not seconds, but they do not move with the machine: where timed pieces
spread by tens of percent from one minute to the next, these repeat within ~1 %. bench.instructions
counts whole calls of the real server; this says which part of one to work on. Scratch numbers
for BENCHMARKS.md, not a target of `make bench`. Takes a few minutes (valgrind runs Python ~50x
slower).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

INSIDE = "ISSUES_PIECES_OUT"  # set in the run under valgrind: where callgrind writes its dumps
_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)
GROUPS = 90_000  # GetGroup reads spread over the data set's groups, as bench.instructions does
FIRST_TOUCH = 80_001  # resolves toggle groups from here (bench.ab takes 60,001 on)


class _Counter:
    def __init__(self, out: str) -> None:
        self.out, self.pid = out, os.getpid()

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.pid)], check=True, capture_output=True)

    def _dump(self) -> int:
        directory, name = os.path.split(self.out)
        before = set(Path(directory).glob(name + "*"))
        self._control("--dump")
        while True:  # callgrind writes the dump at its next check; this process sleeps meanwhile
            new = set(Path(directory).glob(name + "*")) - before
            if new:
                time.sleep(0.3)
                dump = new.pop()
                total = int(_TOTAL.findall(dump.read_text(errors="replace"))[0])
                dump.unlink()
                return total
            time.sleep(0.1)

    def count(self, name: str, piece: Callable[[int], Any], *, calls: int) -> None:
        for i in range(20):
            piece(i)
        self._control("--zero")
        for _ in range(calls):
            pass
        empty = self._dump()
        self._control("--zero")
        for i in range(calls):
            piece(i)
        print(f"{name:46} {(self._dump() - empty) / calls:12,.0f} instructions", flush=True)


def _pieces(url: str) -> list[tuple[str, Callable[[int], Any]]]:
    from issues.v1 import issue_service_pb2 as pb

    from bench.perf_probe import CALLER, ORG
    from server.core import selection, update
    from server.core.commands import UpdateCommand
    from server.storage import liveness
    from server.storage.db import make_database
    from server.telemetry import logs
    from server.transport import convert

    make_database(url, workers=2)
    logs.configure_logging()
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115
    access = logging.getLogger("issue_service.access")
    view = update.get_group(caller=CALLER, organization_id=ORG, group_id=5)
    fields = {"method": "/issues.v1.IssueService/GetGroup", "grpc_type": "unary", "code": "OK", "duration_ms": 1.5,
              "request_id": "bench.1", "acting_user": "1", "organization_id": 1, "group_count": 1}  # fmt: skip
    statuses = ("resolved", "unresolved")

    def group_id(i: int) -> int:
        return 1 + (i * 7919) % GROUPS

    def checkout(i: int) -> None:
        with liveness.connection():
            pass

    def access_row(i: int) -> Any:
        with liveness.connection():
            return selection.organization(caller=CALLER, organization_id=ORG, user_id=CALLER.user_id,
                                          group_id=group_id(i), group="reply")  # fmt: skip

    def reply(i: int) -> Any:
        message = pb.GetGroupResponse()
        convert.fill_group(message.group, view)
        return message

    def resolve(i: int) -> Any:
        command = UpdateCommand(status=statuses[i % 2])
        return update.update_group(caller=CALLER, organization_id=ORG, group_id=FIRST_TOUCH + i // 2, command=command)

    def get(i: int) -> Any:
        return update.get_group(caller=CALLER, organization_id=ORG, group_id=group_id(i))

    def access_line(i: int) -> None:
        logs.log_fields(access, logging.INFO, f"{fields['method']} OK", fields)

    return [
        ("GetGroup: the core (get_group)", get),
        ("GetGroup: checkout alone", checkout),
        ("GetGroup: checkout, statement, records", access_row),
        ("GetGroup: the reply written (fill_group)", reply),
        ("access line (log_fields, logging, write)", access_line),
        ("resolve, first touch: the core (update_group)", resolve),
    ]


def _inside(url: str, calls: int) -> None:
    counter = _Counter(os.environ[INSIDE])
    for name, piece in _pieces(url):
        counter.count(name, piece, calls=calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    if INSIDE in os.environ:
        _inside(args.url, args.calls)
        return
    with tempfile.TemporaryDirectory(prefix="issues-pieces-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
                   sys.executable, "-m", "bench.pieces", args.url, "--calls", str(args.calls)]  # fmt: skip
        completed = subprocess.run(command, env={**os.environ, INSIDE: out}, stderr=subprocess.DEVNULL, check=False)
        sys.exit(completed.returncode)


if __name__ == "__main__":
    main()
