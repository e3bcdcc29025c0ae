"""Tokens are reloaded on SIGHUP by a running `python -m server serve`, without a restart."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.transport.auth import TokenStore, hash_token, load_tokens
from tests.security.support import ServerProcess, migrate, start_server, write_tokens


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


@pytest.mark.slow
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


def test_tokens_are_kept_as_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    entries = [
        {"name": "plain", "token": "s3cret", "scopes": ["event:read"]},
        {"name": "hashed", "sha256": hash_token("other"), "scopes": ["event:write"]},
    ]
    path.write_text(json.dumps({"tokens": entries}))
    tokens = load_tokens(path)
    assert [t.sha256 for t in tokens] == [hash_token("s3cret"), hash_token("other")]
    assert "s3cret" not in repr(tokens)
    store = TokenStore(path)
    assert store.find("s3cret") == tokens[0]
    assert store.find("other") == tokens[1]
    assert store.find(hash_token("s3cret")) is None  # knowing the stored hash is not enough
    assert store.find("s3cret ") is None
