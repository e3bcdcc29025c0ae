"""clients/service_config.json: a client using it rides out one UNAVAILABLE, and retries writes safely."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.core import errors as core
from server.core import update
from server.transport import observability
from server.transport.app import Running
from tests import factories as f
from tests.conftest import metadata

CONFIG_PATH = Path(__file__).resolve().parents[2] / "clients" / "service_config.json"
CONFIG = json.loads(CONFIG_PATH.read_text())
SERVICE = pb.DESCRIPTOR.services_by_name["IssueService"]


def _policies() -> dict[str, dict[str, Any]]:
    """method name -> its method config ('' for the service-wide default)."""
    return {name.get("method", ""): config for config in CONFIG["methodConfig"] for name in config["name"]}


@pytest.fixture()
def retrying(running: Running, database: str) -> Iterator[issue_service_pb2_grpc.IssueServiceStub]:
    options = [("grpc.service_config", CONFIG_PATH.read_text()), ("grpc.enable_retries", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=options) as channel:
        yield issue_service_pb2_grpc.IssueServiceStub(channel)


def _failing_once(monkeypatch: pytest.MonkeyPatch, name: str, error: core.CoreError) -> list[int]:
    """Replace update.<name> so its first call raises `error`; returns the call log."""
    real, calls = getattr(update, name), []

    def flaky(**kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real(**kw)

    monkeypatch.setattr(update, name, flaky)
    return calls


def _access_codes(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.code, r.request_id) for r in caplog.records if r.name == observability.access_log.name]  # type: ignore[attr-defined]


def test_a_read_answered_unavailable_once_succeeds_on_the_configured_retry(
    retrying: Any, stub: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=observability.access_log.name)
    w = f.world()
    g = f.group(w["project"])
    calls = _failing_once(
        monkeypatch, "get_group", core.Unavailable("database busy; retry later", reason="DATABASE_BUSY")
    )
    request = pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id)
    reply = retrying.GetGroup(request, metadata=metadata(**{"x-request-id": "retry-read-1"}))
    assert reply.group.id == g.id
    assert len(calls) == 2
    assert _access_codes(caplog) == [("UNAVAILABLE", "retry-read-1"), ("OK", "retry-read-1")]


def test_without_the_config_the_same_failure_reaches_the_caller(stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    w = f.world()
    g = f.group(w["project"])
    _failing_once(monkeypatch, "get_group", core.Unavailable("database busy; retry later", reason="DATABASE_BUSY"))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_write_with_a_request_id_aborted_by_a_concurrent_update_is_retried_and_applied_once(
    retrying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = f.world()
    g = f.group(w["project"])
    conflict = core.Conflict("concurrent update of the same issues; retry", reason="CONCURRENT_UPDATE")
    calls = _failing_once(monkeypatch, "update_group", conflict)
    request = pb.UpdateGroupRequest(
        organization_id=w["org"].id, group_id=g.id, patch=pb.GroupPatch(is_bookmarked=True), request_id="write-1"
    )
    reply = retrying.UpdateGroup(request, metadata=metadata(user_id=w["user"].id))
    assert reply.group.is_bookmarked and len(calls) == 2


def test_a_stale_etag_is_not_retried_the_server_pushes_back(retrying: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=observability.access_log.name)
    w = f.world()
    g = f.group(w["project"])
    request = pb.UpdateGroupRequest(
        organization_id=w["org"].id, group_id=g.id, patch=pb.GroupPatch(is_public=True),
        etag="stale", request_id="etag-1",
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        retrying.UpdateGroup(request, metadata=metadata(user_id=w["user"].id))
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert [code for code, _ in _access_codes(caplog)] == ["ABORTED"]  # one attempt: re-read first


def test_every_method_of_the_service_is_configured_explicitly() -> None:
    assert set(SERVICE.methods_by_name) <= set(_policies()), "add the new method to clients/service_config.json"


def test_every_configured_method_exists_and_streams_are_never_retried() -> None:
    for method, config in _policies().items():
        if not method:
            continue
        assert method in SERVICE.methods_by_name, f"{method} is not an IssueService method"
        descriptor = SERVICE.methods_by_name[method]
        if descriptor.server_streaming or descriptor.client_streaming:
            assert "retryPolicy" not in config, f"{method}: a stream resumes with its page token, not a retry"
    assert "retryPolicy" not in _policies()[""], "methods added later must opt in to retries"


def test_aborted_is_retried_only_for_methods_whose_requests_carry_a_request_id() -> None:
    for method, config in _policies().items():
        codes = config.get("retryPolicy", {}).get("retryableStatusCodes", [])
        if "ABORTED" in codes:
            fields = SERVICE.methods_by_name[method].input_type.fields_by_name
            assert "request_id" in fields, f"{method} retries ABORTED but its request has no request_id"
        assert set(codes) <= {"UNAVAILABLE", "ABORTED"}, method
        # Every call has a deadline, except a watch: it lives until the caller ends it.
        assert ("timeout" in config) != method.startswith("Watch"), method
