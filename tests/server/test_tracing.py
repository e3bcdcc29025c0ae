"""Tracing: a caller's trace continues through the RPC's span to a span per SQL statement."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from server.storage.models import ALL_MODELS, db
from server.telemetry import logs, sql, tracing
from server.transport import observability
from server.transport.app import Config, create_server
from tests import factories as f
from tests.conftest import empty_schema, metadata, token_store

SQL_ATTRIBUTES = {"db.system.name", "db.operation.name", "db.collection.name", "error.type"}


@pytest.fixture()
def traced(migrated: str) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    """A server with tracing on, and a client channel that starts its own spans (same provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # create_server binds the database and hooks the statement spans to it: empty that one.
    running = create_server(Config(database_url=migrated, workers=4, tracer_provider=provider), tokens=token_store())
    empty_schema()
    channel = intercept_channel(grpc.insecure_channel(f"127.0.0.1:{running.port}"), client_interceptor(provider))
    try:
        with db.connection_context():
            yield issue_service_pb2_grpc.IssueServiceStub(channel), exporter
    finally:
        channel.close()
        running.stop(0)
        provider.shutdown()


def _world() -> dict[str, Any]:
    w = f.world()
    w["group"] = f.group(w["project"], title="secret-title-7781")
    return w


def _by_kind(spans: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, ReadableSpan, list[ReadableSpan]]:
    (client,) = [s for s in spans if s.kind == SpanKind.CLIENT and s.name.startswith("/issues.v1")]
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    statements = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "issue_service.sql"]
    return client, server, statements


def test_one_trace_runs_from_the_client_span_through_the_rpc_span_to_its_sql_spans(
    traced: tuple[Any, InMemorySpanExporter],
) -> None:
    stub, exporter = traced
    w = _world()
    exporter.clear()  # the set-up's own statements are no part of the call
    request = pb.GetGroupRequest(organization_id=w["org"].id, group_id=w["group"].id)
    stub.GetGroup(request, metadata=metadata(user_id=w["user"].id))
    client, server, statements = _by_kind(exporter.get_finished_spans())
    assert client.context is not None and server.context is not None and server.parent is not None
    trace_id = client.context.trace_id
    assert server.context.trace_id == trace_id and server.parent.span_id == client.context.span_id
    assert server.name == "/issues.v1.IssueService/GetGroup"
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 0
    assert statements, "no SQL spans"
    for span in statements:
        assert span.context is not None and span.context.trace_id == trace_id
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert span.attributes is not None and set(span.attributes) <= SQL_ATTRIBUTES
        assert span.attributes["db.operation.name"] in {"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT"}
    names = {s.name for s in statements}
    assert any(n.startswith("SELECT ") for n in names), names  # kind and table


def test_sql_spans_never_carry_statement_text_or_parameter_values(traced: tuple[Any, InMemorySpanExporter]) -> None:
    stub, exporter = traced
    w = _world()
    exporter.clear()  # the set-up's own statements are no part of the call
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    stub.UpdateGroup(
        pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=w["group"].id, patch=patch),
        metadata=metadata(user_id=w["user"].id),
    )
    _client, _server, statements = _by_kind(exporter.get_finished_spans())
    tables = {model._meta.table_name for model in ALL_MODELS}
    assert {s.attributes["db.operation.name"] for s in statements if s.attributes} >= {"SELECT", "UPDATE"}
    for span in statements:
        attributes = dict(span.attributes or {})
        assert set(attributes) <= SQL_ATTRIBUTES
        assert attributes.pop("db.collection.name", None) in {*tables, None}, span.name  # a table, not a value
        assert attributes.pop("db.system.name") in {"sqlite", "postgresql"}
        assert str(attributes.pop("db.operation.name")).isalpha()
        assert span.name.split(" ")[-1] in {*tables, span.attributes and span.attributes["db.operation.name"]}


def test_statements_outside_a_traced_call_make_no_spans(traced: tuple[Any, InMemorySpanExporter]) -> None:
    _stub, exporter = traced
    _world()  # the test's own inserts: no span is current in this thread
    assert not [
        s
        for s in exporter.get_finished_spans()
        if s.instrumentation_scope and s.instrumentation_scope.name == "issue_service.sql"
    ]


def test_a_failed_rpc_span_records_its_grpc_code_and_reason(traced: tuple[Any, InMemorySpanExporter]) -> None:
    stub, exporter = traced
    w = _world()
    exporter.clear()  # the set-up's own statements are no part of the call
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=999_999), metadata=metadata())
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    _client, server, _statements = _by_kind(exporter.get_finished_spans())
    assert server.status.status_code == StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert server.attributes["error.type"] == "GROUP_NOT_FOUND"
    assert "NOT_FOUND" in (server.status.description or "")


def test_a_stream_is_one_span_with_its_statements_and_its_access_line_names_the_trace(
    traced: tuple[Any, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=observability.access_log.name)
    stub, exporter = traced
    w = _world()
    exporter.clear()  # the set-up's own statements are no part of the call
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=[w["group"].id], patch=pb.GroupPatch(is_public=True)
    )
    assert list(stub.StreamBulkUpdateGroups(request, metadata=metadata(user_id=w["user"].id)))
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.context is not None
    children = [s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id]
    # The writes leave as one statement of data-modifying CTEs on PostgreSQL, named by its first.
    assert any(s.name.startswith(("UPDATE ", "INSERT ")) for s in children), [s.name for s in children]
    formatter = logs.JsonLineFormatter()
    (line,) = [json.loads(formatter.format(r)) for r in caplog.records if r.name == observability.access_log.name]
    assert line["trace_id"] == format(server.context.trace_id, "032x")


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, False, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, False, False),
        ({"OTEL_SDK_DISABLED": "true"}, True, False),
        ({"ISSUES_TRACING": "1"}, False, True),
    ],
)
def test_tracing_is_off_unless_a_flag_or_the_otel_variables_ask_for_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], flag: bool, expected: bool
) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", *tracing.ENDPOINT_VARS, tracing.TRACING_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.tracing_requested(flag=flag) is expected


@pytest.mark.parametrize(
    ("env", "exporter"),
    [({}, "opentelemetry.exporter.otlp.proto.grpc"), ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
     "opentelemetry.exporter.otlp.proto.http"), ({"OTEL_TRACES_EXPORTER": "console"}, "opentelemetry.sdk")],
)  # fmt: skip
def test_the_exporter_follows_the_otel_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exporter: str
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert type(tracing._exporter()).__module__.startswith(exporter)


def test_an_unknown_exporter_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="zipkin"):
        tracing._exporter()


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            'SELECT "t1"."id" FROM "sentry_groupedmessage" AS "t1" WHERE "t1"."id" = ?',
            ("SELECT", "sentry_groupedmessage"),
        ),
        ('INSERT INTO "sentry_activity" ("group_id") VALUES (%s)', ("INSERT", "sentry_activity")),
        ('UPDATE "sentry_groupedmessage" SET "status" = 1', ("UPDATE", "sentry_groupedmessage")),
        ('DELETE FROM "sentry_groupbookmark" WHERE "id" IN (?)', ("DELETE", "sentry_groupbookmark")),
        ('WITH rows AS (SELECT value FROM json_each(?)) INSERT INTO "t" SELECT * FROM rows', ("INSERT", "t")),
        ("SELECT value FROM json_each(?)", ("SELECT", None)),
        ('SELECT r.gid FROM (SELECT h."id" AS gid FROM "sentry_grouphistory" h) r', ("SELECT", "sentry_grouphistory")),
        ("SELECT 1", ("SELECT", None)),
        ("COMMIT", ("COMMIT", None)),
    ],
)
def test_a_statement_is_described_by_its_kind_and_table_only(statement: str, expected: tuple[str, str | None]) -> None:
    assert sql.describe(statement) == expected
