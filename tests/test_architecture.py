"""The layering rule, enforced: the core never imports grpc or the generated code."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "server" / "core"
FORBIDDEN = ("grpc", "grpc_status", "grpc_health", "grpc_reflection", "issues", "google.rpc", "google.protobuf")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_modules_import_no_transport_or_generated_code() -> None:
    offenders = {
        f"{path.relative_to(CORE)}: {name}"
        for path in CORE.rglob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders, f"core imports transport code: {sorted(offenders)}"


def test_core_has_modules_to_check() -> None:
    assert len(list(CORE.rglob("*.py"))) > 10


SERVER = CORE.parent
# Arrows point inward: transport -> core -> storage; nothing points back out.
LAYER_RULES = {
    "core": ("server.transport", "server.fixtures", "server.processes", "server.__main__"),
    "storage": (
        "server.core",
        "server.transport",
        "server.fixtures",
        "server.processes",
        "server.__main__",
        "server.telemetry",
    ),
    # Logs, metrics and traces are fed by the transport; they know the database, nothing above it.
    "telemetry": ("server.core", "server.transport", "server.fixtures", "server.processes", "server.__main__", "grpc"),
    # The event stream sits beside the core: the transport and the relay use it, never the reverse.
    "events": (
        "server.transport",
        "server.relay",
        "server.fixtures",
        "server.processes",
        "server.__main__",
        "grpc",
        "issues",
    ),
}


def _layer_offenders(layer: str, forbidden: tuple[str, ...]) -> set[str]:
    return {
        f"{path.relative_to(SERVER)}: {name}"
        for path in (SERVER / layer).rglob("*.py")
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    }


def test_inner_layers_never_import_outer_ones() -> None:
    offenders = set().union(*(_layer_offenders(layer, bad) for layer, bad in LAYER_RULES.items()))
    assert not offenders, f"imports point outward: {sorted(offenders)}"
