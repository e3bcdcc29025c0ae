"""OpenTelemetry tracing: off by default; on with `serve --tracing` or the standard OTEL_* variables.

The exporter is OTLP (gRPC by default, `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/protobuf` for
HTTP), configured by the SDK's own variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, headers, `OTEL_BSP_*`,
`OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`); `OTEL_TRACES_EXPORTER=console`
prints spans instead, and `OTEL_SDK_DISABLED=true` turns everything off.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

TRACING_ENV = "ISSUES_TRACING"
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def tracing_requested(*, flag: bool = False) -> bool:
    """The flag, an exporter other than `none`, or an OTLP endpoint; never with OTEL_SDK_DISABLED."""
    if _truthy(os.environ.get("OTEL_SDK_DISABLED")):
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if flag or _truthy(os.environ.get(TRACING_ENV)):
        return exporter != "none"
    if exporter:
        return exporter != "none"
    return any(os.environ.get(name) for name in ENDPOINT_VARS)


def _exporter() -> SpanExporter:
    name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported (use otlp, console or none)")
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    if protocol != "grpc":
        raise ValueError(f"OTLP protocol {protocol!r} is not supported (use grpc or http/protobuf)")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    return GrpcExporter()


def provider_from_env() -> TracerProvider:
    """A provider exporting in batches to what the OTEL_* variables name (sampler from them too)."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "issue-service"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    return provider
