"""Writers in several worker processes of one supervisor, on one database (SQLite's lock is per
database, so across processes IMMEDIATE transactions and the busy timeout must serialise them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from issues.v1 import issue_service_pb2_grpc

from tests.conftest import TOKENS
from tests.processes.support import channels_on_every_worker
from tests.security.support import ServerProcess, start_server, write_tokens
from tests.security.test_concurrency import assert_consistent, run_mix, shared  # noqa: F401  (fixture)


@pytest.fixture()
def supervised(database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    tokens = tmp_path / "tokens.json"
    write_tokens(tokens, {name: (s, sorted(scopes)) for name, (s, scopes, _) in TOKENS.items()})
    server = start_server(database, tokens, "--processes", "2", "--workers", "4")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_writers_in_two_worker_processes_stay_consistent(supervised: ServerProcess, shared: dict[str, Any]) -> None:  # noqa: F811
    channels = channels_on_every_worker(supervised)
    try:
        stubs = [issue_service_pb2_grpc.IssueServiceStub(c) for c in channels]
        assert_consistent(shared, run_mix(stubs, shared))
    finally:
        for channel in channels:
            channel.close()
