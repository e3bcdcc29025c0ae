"""Several server processes share one PostgreSQL through PgBouncer in transaction pooling mode,
with `prepared_statements=off`: the two-process concurrency test, through a PgBouncer of its own.

Runs on the PostgreSQL leg (`make test-postgres`); in CI a missing pgbouncer is a failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from issues.v1 import issue_service_pb2_grpc

from tests.conftest import BACKEND, TOKENS
from tests.processes.pgbouncer import Bouncer, pgbouncer
from tests.processes.support import channels_on_every_worker
from tests.security.support import ServerProcess, start_server, write_tokens
from tests.security.test_concurrency import assert_consistent, run_mix, shared  # noqa: F401  (fixture)

pytestmark = pytest.mark.db


@pytest.fixture()
def bouncer(database: str) -> Iterator[Bouncer]:
    if BACKEND != "postgres":
        pytest.skip("PgBouncer fronts PostgreSQL: this runs in make test-postgres (TEST_BACKEND=postgres)")
    with pgbouncer(database) as running:
        yield running


@pytest.fixture()
def servers(bouncer: Bouncer, database: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    tokens = tmp_path / "tokens.json"
    write_tokens(tokens, {name: (s, sorted(scopes)) for name, (s, scopes, _) in TOKENS.items()})
    url = bouncer.url(database, prepared_statements="off")
    started: list[ServerProcess] = []
    try:
        for _ in range(2):  # two servers, as two machines would run them, each with two workers
            started.append(start_server(url, tokens, "--processes", "2", "--workers", "4"))
        yield started
    finally:
        for server in started:
            server.stop()


def test_the_timeouts_recipe_applies_through_the_pooler(bouncer: Bouncer, database: str) -> None:
    with psycopg.connect(bouncer.url(database), prepare_threshold=None, autocommit=False) as conn:
        assert conn.execute("SHOW lock_timeout").fetchone() == ("5s",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        assert conn.execute("SHOW jit").fetchone() == ("off",)


@pytest.mark.slow
def test_two_servers_through_pgbouncer_in_transaction_mode_stay_consistent(
    servers: list[ServerProcess],
    bouncer: Bouncer,
    shared: dict[str, Any],  # noqa: F811
) -> None:
    channels: list[grpc.Channel] = []
    try:
        for server in servers:
            channels += channels_on_every_worker(server, at_least=4)
        stubs = [issue_service_pb2_grpc.IssueServiceStub(c) for c in channels]
        # Enough calls per worker that psycopg would have prepared its statements (it prepares
        # from the 5th run of a text) had prepared_statements=off not turned that off.
        results = run_mix(stubs, shared)
        assert_consistent(shared, results)
    finally:
        for channel in channels:
            channel.close()
    log = bouncer.log.read_text()
    assert "login attempt: db=" in log  # the servers really went through the pooler
    assert "prepared statement" not in log
