"""Tracing with several workers: every call's span is exported, whichever worker served it.

(Each worker builds its tracer provider after the fork, since an OTLP exporter may hold a gRPC
channel; the console exporter used here holds none, so this checks the export, not the order.)"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from tests.processes.conftest import SECRET
from tests.processes.support import channels_on_every_worker
from tests.security.support import start_server


def test_every_worker_exports_its_spans(sqlite_url: str, tokens: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # spans as JSON on stdout
    server = start_server(sqlite_url, tokens, "--processes", "2", "--tracing")
    channels = channels_on_every_worker(server)
    try:
        for channel in channels:
            with pytest.raises(grpc.RpcError):  # NOT_FOUND in an empty database: still a span
                issue_service_pb2_grpc.IssueServiceStub(channel).GetGroup(
                    pb.GetGroupRequest(organization_id=1, group_id=1),
                    metadata=(("authorization", f"Bearer {SECRET}"),), timeout=30)  # fmt: skip
    finally:
        for channel in channels:
            channel.close()
        server.stop()  # SIGTERM: each worker shuts its provider down, flushing the batch
    assert server.proc.returncode == 0
    out = server.startup + server.output()
    spans = [line for line in out.splitlines() if '"name": "/issues.v1.IssueService/GetGroup"' in line]
    names = sorted({line.strip() for line in out.splitlines() if line.strip().startswith('"name": ')})
    assert len(spans) == len(channels), names
