"""Tokens are reloaded on SIGHUP by a running `python -m server serve`, without a restart."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from tests.security.support import ServerProcess, migrate, start_server, write_tokens

pytestmark = pytest.mark.slow


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    url = f"sqlite:///{tmp_path / 'reload.db'}"
    migrate(url)
    tokens = tmp_path / "tokens.json"
    write_tokens(tokens, {"old": ("old-secret", ["event:read"])})
    server = start_server(url, tokens)
    try:
        yield server, tokens
    finally:
        server.stop()


def code_for(target: str, secret: str) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        stub = issue_service_pb2_grpc.IssueServiceStub(channel)
        try:
            stub.GetGroup(
                pb.GetGroupRequest(organization_id=1, group_id=1),
                metadata=(("authorization", f"Bearer {secret}"),),
                timeout=10,
            )
        except grpc.RpcError as err:
            return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_sighup_swaps_the_token_file(served: tuple[ServerProcess, Path]) -> None:
    server, tokens = served
    assert code_for(server.target, "old-secret") == grpc.StatusCode.NOT_FOUND  # authenticated
    assert code_for(server.target, "new-secret") == grpc.StatusCode.UNAUTHENTICATED

    write_tokens(tokens, {"new": ("new-secret", ["event:read"])})
    assert code_for(server.target, "new-secret") == grpc.StatusCode.UNAUTHENTICATED  # not yet
    server.proc.send_signal(signal.SIGHUP)

    end = time.monotonic() + 30  # the handler runs soon; the bound only guards a broken server
    while code_for(server.target, "new-secret") == grpc.StatusCode.UNAUTHENTICATED:
        assert time.monotonic() < end, "new token never accepted after SIGHUP"
        time.sleep(0.1)
    assert code_for(server.target, "new-secret") == grpc.StatusCode.NOT_FOUND
    assert code_for(server.target, "old-secret") == grpc.StatusCode.UNAUTHENTICATED
    assert server.proc.poll() is None
