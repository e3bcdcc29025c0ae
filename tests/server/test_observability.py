"""Access log, request ids, metrics and SQL counting, through the real in-process gRPC server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import issue_service_pb2 as pb

from server.telemetry import logs, metrics, sql
from server.transport import observability
from tests import factories as f
from tests.conftest import TOKENS, metadata


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


@pytest.fixture()
def access_lines(caplog: pytest.LogCaptureFixture) -> None:
    """Capture the access log at INFO (read back with _lines)."""
    caplog.set_level(logging.INFO, logger=observability.access_log.name)


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access lines exactly as the server writes them (the real formatter, parsed back)."""
    formatter = logs.JsonLineFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == observability.access_log.name]


def _trailer(call: Any, key: str) -> str | None:
    return dict(call.trailing_metadata() or ()).get(key)


def test_each_rpc_writes_one_json_access_line_with_method_code_user_org_and_group_count(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    g = f.group(w["project"])
    stub.GetGroup(
        pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id),
        metadata=metadata(user_id=w["user"].id, **{"x-request-id": "req-get-1"}),
    )
    lines = _lines(caplog)
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "/issues.v1.IssueService/GetGroup"
    assert line["code"] == "OK"
    assert line["request_id"] == "req-get-1"
    assert line["acting_user"] == str(w["user"].id)
    assert line["organization_id"] == w["org"].id
    assert line["group_count"] == 1
    assert line["duration_ms"] >= 0


def test_bulk_access_line_counts_the_matched_groups(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    ids = [f.group(w["project"]).id for _ in range(3)]
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    stub.BulkUpdateGroups(
        pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=ids, patch=patch),
        metadata=metadata(),
    )
    (line,) = _lines(caplog)
    assert (line["method"], line["code"], line["group_count"]) == (
        "/issues.v1.IssueService/BulkUpdateGroups",
        "OK",
        3,
    )
    assert line["acting_user"] is None


def test_request_id_sent_by_the_client_is_echoed_in_trailing_metadata(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    _, call = stub.GetGroup.with_call(
        pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id),
        metadata=metadata(**{"x-request-id": "abc-123"}),
    )
    assert _trailer(call, "x-request-id") == "abc-123"


def test_a_request_id_is_generated_when_the_client_sends_none(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    _, call = stub.GetGroup.with_call(
        pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata()
    )
    generated = _trailer(call, "x-request-id")
    assert generated is not None and len(generated) == 32


def test_an_unsafe_request_id_is_replaced_not_echoed(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    _, call = stub.GetGroup.with_call(
        pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id),
        metadata=metadata(**{"x-request-id": 'x" injected {'}),
    )
    echoed = _trailer(call, "x-request-id")
    assert echoed is not None and echoed != 'x" injected {'


def test_error_reply_keeps_its_details_and_also_echoes_the_request_id(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(
            pb.GetGroupRequest(organization_id=w["org"].id, group_id=999_999),
            metadata=metadata(**{"x-request-id": "missing-1"}),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert _trailer(err.value, "x-request-id") == "missing-1"
    status = rpc_status.from_call(err.value)
    assert status is not None and status.details  # the ErrorInfo survived next to the id
    (line,) = _lines(caplog)
    assert (line["code"], line["request_id"]) == ("NOT_FOUND", "missing-1")


def test_invalid_argument_reply_still_carries_field_violations(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(
        status=pb.STATUS_UPDATE_RESOLVED,
        status_details=pb.StatusDetailsUpdate(in_release="no-such-version"),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateGroup(
            pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=patch),
            metadata=metadata(user_id=w["user"].id),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert bad.field_violations[0].field == "patch.status_details.in_release"
    assert _trailer(err.value, "x-request-id")


def test_denied_call_is_logged_as_unauthenticated_without_the_token(
    stub: Any, caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    secret = "wrong-secret-do-not-log"
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(
            pb.GetGroupRequest(organization_id=1, group_id=1),
            metadata=(("authorization", f"Bearer {secret}"),),
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _trailer(err.value, "x-request-id")
    (line,) = _lines(caplog)
    assert line["code"] == "UNAUTHENTICATED"
    assert secret not in caplog.text


def test_no_token_ever_appears_in_the_logs(stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    g = f.group(w["project"])
    stub.UpdateGroup(
        pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=pb.GroupPatch(is_bookmarked=True)),
        metadata=metadata(user_id=w["user"].id),
    )
    assert _lines(caplog)
    for secret, _scopes, _orgs in TOKENS.values():
        assert secret not in caplog.text
    assert "authorization" not in caplog.text.lower()


def test_metrics_endpoint_exposes_grpc_server_metrics_changed_groups_pool_and_process(
    stub: Any, w: dict[str, Any]
) -> None:
    registry = metrics.REGISTRY
    rpc = {"grpc_service": "issues.v1.IssueService", "grpc_method": "BulkUpdateGroups", "grpc_type": "unary"}
    handled = {**rpc, "grpc_code": "OK"}
    before = {name: registry.get_sample_value(name, handled if "handled" in name else rpc) or 0.0
              for name in ("grpc_server_started_total", "grpc_server_handled_total",
                           "grpc_server_msg_received_total", "grpc_server_msg_sent_total")}  # fmt: skip
    before_changed = registry.get_sample_value("issue_service_groups_changed_total", {"kind": "status"}) or 0.0
    ids = [f.group(w["project"]).id for _ in range(2)]
    stub.BulkUpdateGroups(
        pb.BulkUpdateGroupsRequest(
            organization_id=w["org"].id,
            group_ids=ids,
            patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
        ),
        metadata=metadata(),
    )
    server = metrics.start_metrics_server(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    for name, value in before.items():
        assert registry.get_sample_value(name, handled if "handled" in name else rpc) == value + 1, name
    changed = registry.get_sample_value("issue_service_groups_changed_total", {"kind": "status"})
    assert changed == before_changed + 2
    assert "grpc_server_handling_seconds_bucket{" in text
    assert 'grpc_method="BulkUpdateGroups"' in text
    for name in (
        "issue_service_db_pool_max",
        "process_cpu_seconds_total",
        "python_info",
        "python_gc_objects_collected_total",
    ):
        assert name in text, name
    assert (registry.get_sample_value("issue_service_db_pool_max") or 0) > 0


def test_a_dry_run_counts_no_changed_groups(stub: Any, w: dict[str, Any]) -> None:
    registry = metrics.REGISTRY
    before = registry.get_sample_value("issue_service_groups_changed_total", {"kind": "status"}) or 0.0
    ids = [f.group(w["project"]).id for _ in range(2)]
    stub.BulkUpdateGroups(
        pb.BulkUpdateGroupsRequest(
            organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
            validate_only=True,
        ),
        metadata=metadata(),
    )  # fmt: skip
    assert (registry.get_sample_value("issue_service_groups_changed_total", {"kind": "status"}) or 0.0) == before


def test_sql_counting_adds_statement_counts_to_the_access_line(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    sql.enable_query_counting()
    g = f.group(w["project"])
    stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata())
    (line,) = _lines(caplog)
    assert line["sql_statements"] > 0
    assert line["sql_ms"] >= 0


def test_every_log_line_has_one_json_shape_with_iso_utc_time_level_logger_and_message() -> None:
    record = logging.LogRecord("issue_service", logging.WARNING, __file__, 1, "x %s", ("y",), None)
    out = json.loads(logs.JsonLineFormatter().format(record))
    assert list(out)[:4] == ["ts", "level", "logger", "message"]
    assert (out["level"], out["logger"], out["message"]) == ("WARNING", "issue_service", "x y")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["ts"]), out["ts"]
    assert "trace_id" not in out and "request_id" not in out  # outside a call, tracing off


def test_lines_logged_during_a_call_carry_its_request_id() -> None:
    logs.bind_request_id("req-inside")
    try:
        record = logging.LogRecord("issue_service", logging.ERROR, __file__, 1, "internal error", (), None)
        out = json.loads(logs.JsonLineFormatter().format(record))
    finally:
        logs.bind_request_id(None)
    assert out["request_id"] == "req-inside"


def test_a_failed_call_logs_its_reason_and_message(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    with pytest.raises(grpc.RpcError):
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=999_999), metadata=metadata())
    (line,) = _lines(caplog)
    assert (line["level"], line["code"], line["reason"]) == ("INFO", "NOT_FOUND", "GROUP_NOT_FOUND")
    assert line["error"]
    assert line["message"] == "/issues.v1.IssueService/GetGroup NOT_FOUND"


def test_stream_writes_one_access_line_counts_messages_and_echoes_the_request_id(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    registry = metrics.REGISTRY
    rpc = {"grpc_service": "issues.v1.IssueService", "grpc_method": "StreamBulkUpdateGroups",
           "grpc_type": "server_stream"}  # fmt: skip
    sent_before = registry.get_sample_value("grpc_server_msg_sent_total", rpc) or 0.0
    handled_before = registry.get_sample_value("grpc_server_handled_total", {**rpc, "grpc_code": "OK"}) or 0.0
    ids = [f.group(w["project"]).id for _ in range(3)]
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    )
    call = stub.StreamBulkUpdateGroups(request, metadata=metadata(**{"x-request-id": "stream-1"}))
    replies = list(call)
    assert _trailer(call, "x-request-id") == "stream-1"
    (line,) = _lines(caplog)
    assert (line["method"], line["grpc_type"], line["code"]) == (
        "/issues.v1.IssueService/StreamBulkUpdateGroups", "server_stream", "OK",
    )  # fmt: skip
    assert (line["request_id"], line["group_count"], line["messages_sent"]) == ("stream-1", 3, len(replies))
    assert registry.get_sample_value("grpc_server_msg_sent_total", rpc) == sent_before + len(replies)
    assert registry.get_sample_value("grpc_server_handled_total", {**rpc, "grpc_code": "OK"}) == handled_before + 1


def test_a_stream_refused_while_streaming_logs_its_code_and_reason_and_echoes_the_id(
    stub: Any, w: dict[str, Any], caplog: pytest.LogCaptureFixture, access_lines: None
) -> None:
    g = f.group(w["project"])
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=[g.id], patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
        request_id="not-for-streams",
    )  # fmt: skip
    call = stub.StreamBulkUpdateGroups(request, metadata=metadata(**{"x-request-id": "stream-2"}))
    with pytest.raises(grpc.RpcError) as err:
        list(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer(err.value, "x-request-id") == "stream-2"
    (line,) = _lines(caplog)
    assert (line["code"], line["reason"], line["messages_sent"]) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT", 0)


class _FakeContext:
    def __init__(self, code: grpc.StatusCode | None, active: bool, remaining: float | None = None) -> None:
        self._code, self._active, self._remaining = code, active, remaining

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def is_active(self) -> bool:
        return self._active

    def time_remaining(self) -> float | None:
        return self._remaining


@pytest.mark.parametrize(
    ("remaining", "expected"), [(None, "CANCELLED"), (2.0, "CANCELLED"), (-0.01, "DEADLINE_EXCEEDED")]
)
def test_an_abandoned_stream_is_logged_by_why_it_ended(remaining: float | None, expected: str) -> None:
    context: Any = _FakeContext(None, False, remaining)
    assert observability.code_name(context, failed=False, abandoned=True) == expected


@pytest.mark.parametrize(
    ("code", "active", "remaining", "failed", "expected"),
    [
        (None, True, None, False, "OK"),
        (None, True, 3.0, False, "OK"),
        (None, False, None, False, "CANCELLED"),
        # Past the server's reading of the deadline but still active: the reply is still sent,
        # and often delivered.
        (None, True, -0.002, False, "OK"),
        (None, True, None, True, "UNKNOWN"),
        (grpc.StatusCode.NOT_FOUND, True, None, True, "NOT_FOUND"),
    ],
)
def test_logged_code_reflects_what_the_client_got(
    code: grpc.StatusCode | None, active: bool, remaining: float | None, failed: bool, expected: str
) -> None:
    context: Any = _FakeContext(code, active, remaining)
    assert observability.code_name(context, failed=failed) == expected


def test_field_value_reads_only_fields_the_message_type_has() -> None:
    from grpc_health.v1 import health_pb2

    from server.transport.call_record import field_value, requested_count

    update = pb.UpdateGroupRequest(organization_id=3, group_id=5)
    assert (field_value(update, "group_id"), field_value(update, "organization_id")) == (5, 3)
    assert field_value(health_pb2.HealthCheckRequest(), "group_id", 0) == 0  # no such field: the default
    assert field_value(b"raw bytes", "patch") is None
    assert (requested_count(update), requested_count(pb.BulkUpdateGroupsRequest(group_ids=[1, 2]))) == (1, 2)


def _record(extra: dict[str, Any], exc_info: Any = None) -> logging.LogRecord:
    logger = logging.getLogger(observability.access_log.name)
    return logger.makeRecord(logger.name, logging.INFO, "f", 1, "%s %s", ("/m", "OK"), exc_info, extra=extra)


def test_a_record_that_names_its_fields_formats_as_the_library_would_format_it() -> None:
    """with_fields' fast path writes the line the library's generic path writes: same keys,
    same order, same values, the bound request id and escaping included."""
    formatter = logs.JsonLineFormatter()
    fields = {"method": "/m", "code": "OK", "duration_ms": 1.5, "acting_user": None, "error": 'é "q"\n'}
    logs.bind_request_id("rid-1")
    try:
        fast, generic = _record(logs.with_fields(fields)), _record(dict(fields))
        generic.created = fast.created
        assert formatter.format(fast) == formatter.format(generic)
        line = json.loads(formatter.format(fast))
        assert list(line) == ["ts", "level", "logger", "message", *fields, "request_id"]
        assert line["error"] == 'é "q"\n' and line["request_id"] == "rid-1"
    finally:
        logs.bind_request_id(None)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, _Kept]]:
    for flag in ("logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks"):
        monkeypatch.setattr(logging, flag, False, raising=False)  # as configure_logging sets them
    monkeypatch.setattr(logging, "_srcfile", None)
    logger = logging.getLogger("issue_service.test_log_fields")
    handler = _Kept()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logs.bind_request_id(None)


def test_log_fields_makes_the_record_the_library_makes(kept: tuple[logging.Logger, _Kept]) -> None:
    """Same attributes as logger.info(message, extra=with_fields(fields)) but for the time it was
    made; the same line; through the logger's own handlers."""
    logger, handler = kept
    fields = {"method": "/m", "code": "OK", "duration_ms": 1.5, "acting_user": None}
    logs.bind_request_id("rid-2")
    logger.info("/m OK", extra=logs.with_fields(fields))
    logs.log_fields(logger, logging.INFO, "/m OK", fields)
    library, ours = handler.records
    assert type(ours) is logging.LogRecord
    timed = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in vars(ours).items() if k not in timed} == {
        k: v for k, v in vars(library).items() if k not in timed
    }
    assert list(vars(ours)) == list(vars(library))
    assert abs(ours.created - library.created) < 5 and abs(ours.relativeCreated - library.relativeCreated) < 5000
    assert ours.msecs == int((ours.created - int(ours.created)) * 1000)
    formatter = logs.JsonLineFormatter()
    library.created = ours.created
    assert formatter.format(ours) == formatter.format(library)


def test_log_fields_respects_level_filters_factories_and_reserved_names(
    kept: tuple[logging.Logger, _Kept], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, handler = kept
    logs.log_fields(logger, logging.DEBUG, "not enabled", {"a": 1})  # the logger's level is INFO
    logger.addFilter(lambda record: record.getMessage() != "filtered")
    logs.log_fields(logger, logging.INFO, "filtered", {"a": 1})
    assert handler.records == []
    with pytest.raises(KeyError, match="Attempt to overwrite 'lineno' in LogRecord"):
        logs.log_fields(logger, logging.INFO, "clash", {"lineno": 1})

    class Marked(logging.LogRecord):
        pass

    monkeypatch.setattr(logging, "_logRecordFactory", Marked)
    logs.log_fields(logger, logging.INFO, "made by the factory", {"a": 1})
    assert type(handler.records[-1]) is Marked and handler.records[-1].a == 1  # type: ignore[attr-defined]
    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)
    monkeypatch.setattr(logging, "logThreads", True)  # per record: not in a template
    logs.log_fields(logger, logging.INFO, "with its thread", {"a": 1})
    assert handler.records[-1].thread == threading.get_ident()
    monkeypatch.setattr(logging, "_srcfile", logging.__file__)  # the caller lookup on: the library finds it
    logs.log_fields(logger, logging.INFO, "with its caller", {"a": 1})
    assert handler.records[-1].funcName == "test_log_fields_respects_level_filters_factories_and_reserved_names"


def test_a_record_that_names_its_fields_but_carries_an_exception_takes_the_library_path() -> None:
    formatter = logs.JsonLineFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(logs.with_fields({"code": "INTERNAL"}), exc_info=sys.exc_info())
    line = json.loads(formatter.format(record))
    assert line["code"] == "INTERNAL" and "ValueError: boom" in line["exc"]
    assert logs.EXTRA_KEYS not in line


@pytest.mark.parametrize(
    "value",
    ["", "plain", 'q"uote\\back', "é ü 雪 \U0001f600", "\n\t\x00\x1f\x7f", 0, -1, 2**70, 1.5, 0.1, -0.0,
     1e16, 1e-7, True, False, None, float("nan"), float("inf"), [1, "a"], {"a": {"b": None}},
     dt.datetime(2026, 12, 1, 1, 2, 3)],
)  # fmt: skip
def test_the_line_is_encoded_as_the_librarys_encoder_encodes_it(value: object) -> None:
    formatter = logs.JsonLineFormatter()
    library = formatter.json_encoder(separators=(",", ":"), default=formatter.json_default)
    line = {"ts": "t", "k é": value, "n": None}
    assert formatter._encode(line) == library.encode(line)


def test_iso_utc_names_the_millisecond_datetime_names() -> None:
    rng = random.Random(7)
    stamps = [1764547200.0, 1764547200.9995, 1764547200.9999996, 1764547201.0004999]
    stamps += [rng.uniform(1.6e9, 1.9e9) for _ in range(2000)]
    for created in stamps:
        expected = dt.datetime.fromtimestamp(created, tz=dt.UTC).isoformat(timespec="milliseconds")
        assert logs.iso_utc(created) == expected.replace("+00:00", "Z"), created
