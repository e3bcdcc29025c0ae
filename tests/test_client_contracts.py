"""The contract published for other languages (gen/) matches protos/: descriptor set, Go, TypeScript.

`make check-clients` (CI) regenerates gen/ and fails on a diff; these checks need no generator
and say what a stale or misnamed artefact looks like.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from issues.v1 import group_pb2, issue_service_pb2

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "gen"
PROTOS = sorted(p.relative_to(ROOT / "protos").as_posix() for p in (ROOT / "protos").rglob("*.proto"))


def _descriptor_set() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString((GEN / "issues.v1.binpb").read_bytes()).file
    return {f.name: f for f in files}


def test_the_descriptor_set_holds_every_proto_with_its_imports_and_the_current_service() -> None:
    files = _descriptor_set()
    assert set(PROTOS) <= set(files), f"missing from the descriptor set: {set(PROTOS) - set(files)}"
    assert "google/protobuf/timestamp.proto" in files  # self-contained: tools need no other file
    (service,) = files["issues/v1/issue_service.proto"].service
    current = issue_service_pb2.DESCRIPTOR.services_by_name["IssueService"]
    assert [m.name for m in service.method] == [m.name for m in current.methods]
    assert files["issues/v1/issue_service.proto"].source_code_info.location  # comments kept


def test_the_descriptor_set_is_the_contract_the_server_is_built_from() -> None:
    """Any change to protos/ but a comment shows here until `make generate-clients` is run."""
    files = _descriptor_set()
    for module in (group_pb2, issue_service_pb2):
        built = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        published = descriptor_pb2.FileDescriptorProto()
        published.CopyFrom(files[built.name])
        published.ClearField("source_code_info")
        for message in _messages(published.message_type):
            for field in message.field:
                field.ClearField("json_name")  # buf records it, protoc's python output does not
        assert published == built, f"gen/ is stale for {built.name}: run `make generate-clients` and commit gen/"


def _messages(messages: Any) -> list[descriptor_pb2.DescriptorProto]:
    return [m for message in messages for m in (message, *_messages(message.nested_type))]


def test_go_package_names_the_generated_go_package() -> None:
    module = re.search(r"^module (\S+)$", (GEN / "go" / "go.mod").read_text(), re.M)
    assert module is not None
    for name, proto in _descriptor_set().items():
        if name not in PROTOS:
            continue
        import_path, _, package = proto.options.go_package.partition(";")
        folder = Path(name).parent.as_posix()
        assert import_path == f"{module.group(1)}/{folder}", name
        stem = Path(name).stem
        generated = [GEN / "go" / folder / f"{stem}.pb.go"]
        if proto.service:
            generated.append(GEN / "go" / folder / f"{stem}_grpc.pb.go")
        for path in generated:
            assert re.search(rf"^package {package}$", path.read_text(), re.M), f"{path} is not package {package}"


def test_every_proto_has_its_typescript_module() -> None:
    for name in PROTOS:
        path = GEN / "ts" / Path(name).with_name(Path(name).stem + "_pb.ts")
        assert f"@generated from file {name}" in path.read_text(), path
