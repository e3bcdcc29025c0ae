"""The edge limits (server/transport/limits.py) and the probe's defects 1-5 of issue 12: every
hostile value is INVALID_ARGUMENT (or NOT_FOUND) with the field named, before any database work,
never INTERNAL, and the database is left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import issue_service_pb2 as pb

from server.transport import limits
from tests import factories as f
from tests.conftest import metadata
from tests.security.support import fingerprint

SERVICE = pb.DESCRIPTOR.services_by_name["IssueService"]
NUL = "Null characters are not allowed."


def request_messages() -> Iterator[Descriptor]:
    """Every message a request of IssueService is or nests (well-known types aside)."""
    seen: set[str] = set()
    todo = [m.input_type for m in SERVICE.methods]
    while todo:
        message = todo.pop()
        if message.full_name in seen or message.full_name.startswith("google.protobuf."):
            continue
        seen.add(message.full_name)
        yield message
        todo += [field.message_type for field in message.fields if field.message_type is not None]


def test_every_field_of_every_request_has_a_declared_limit() -> None:
    missing = [
        f"{message.full_name}.{field.name}"
        for message in request_messages()
        for field in message.fields
        if field.name not in limits.FIELDS.get(message.full_name, {})
    ]
    assert missing == [], "add a line per field to server/transport/limits.py FIELDS"


def test_every_declared_limit_names_a_real_field() -> None:
    by_name = {m.full_name: m for m in request_messages()}
    unknown = [
        f"{name}.{field}" for name, fields in limits.FIELDS.items() for field in fields
        if name not in by_name or field not in by_name[name].fields_by_name
    ]  # fmt: skip
    assert unknown == []


def string_fields(message: Descriptor, prefix: str = "") -> Iterator[tuple[str, Descriptor]]:
    for field in message.fields:
        if field.message_type is not None and not field.message_type.full_name.startswith("google."):
            yield from string_fields(field.message_type, f"{prefix}{field.name}.")
        elif field.type == field.TYPE_STRING:
            yield prefix + field.name, field


def set_path(request: Any, path: str, value: str) -> None:
    *parents, name = path.split(".")
    target = request
    for parent in parents:
        target = getattr(target, parent)
    field = target.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        getattr(target, name).append(value)
    else:
        setattr(target, name, value)


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    world = f.world()
    g = f.group(world["project"], times_seen=5)
    return {"org": world["org"].id, "user": world["user"].id, "group": g.id, "project": world["project"].id}


def refused(stub: Any, method: str, request: Any, *, token: str = "admin") -> grpc.RpcError:
    before = fingerprint()
    call = getattr(stub, method)
    with pytest.raises(grpc.RpcError) as info:
        reply = call(request, metadata=metadata(token, user_id=None), timeout=30)
        if method.startswith("Stream"):
            list(reply)
    assert fingerprint() == before
    return info.value


CASES = [
    (method.name, method.input_type, path)
    for method in SERVICE.methods
    for path, _field in string_fields(method.input_type)
]


@pytest.mark.parametrize(("method", "message", "path"), CASES, ids=[f"{m}:{p}" for m, _, p in CASES])
def test_a_nul_in_any_string_field_is_refused_on_that_field(
    stub: Any, w: dict[str, Any], method: str, message: Descriptor, path: str
) -> None:
    from google.protobuf import message_factory

    request = message_factory.GetMessageClass(message)(organization_id=w["org"])
    set_path(request, path, "a\x00b")
    err = refused(stub, method, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    index = "[0]" if path == "environments" else ""
    assert field_violations(err) == [(path + index, NUL)]


def bulk(w: dict[str, Any], **kw: Any) -> pb.BulkUpdateGroupsRequest:
    return pb.BulkUpdateGroupsRequest(organization_id=w["org"], patch=pb.GroupPatch(is_public=True), **kw)


# Defect 1: non-ASCII digits passed str.isdigit() and then failed int(): INTERNAL.
@pytest.mark.parametrize("query", ["timesSeen:²", "timesSeen:>٣", "times_seen:\uff11", "age:-٣d", "firstSeen:+²w"])
def test_non_ascii_digits_in_a_query_are_invalid_argument(stub: Any, w: dict[str, Any], query: str) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query=query))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(err)] == ["query"]


@pytest.mark.parametrize("query", ["assigned:²", "bookmarks:²", "assigned:٣"])
def test_non_ascii_digits_as_a_user_are_a_name_that_matches_nothing(stub: Any, w: dict[str, Any], query: str) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query=query))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# Defect 2: the day after 9999-12-31 overflowed datetime: INTERNAL.
@pytest.mark.parametrize(
    "query", ["firstSeen:9999-12-31", "lastSeen:9999-12-31T00:00:00", "age:0001-01-01", "age:+99999999w",
              "firstSeen:>=1899-12-31", "lastSeen:-999999999999999999999d"],
)  # fmt: skip
def test_dates_out_of_range_are_invalid_argument(stub: Any, w: dict[str, Any], query: str) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query=query))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(err)] == ["query"]


def test_the_last_day_in_range_still_runs(stub: Any, w: dict[str, Any]) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query="firstSeen:9999-12-30"))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # ran on the database, matched nothing


# Defect 3: a NUL request id reached PostgreSQL (text cannot hold NUL) before the scope check.
@pytest.mark.parametrize("token", ["reader", "writer"])
def test_a_nul_request_id_is_invalid_argument_for_any_token(stub: Any, w: dict[str, Any], token: str) -> None:
    request = pb.UpdateGroupRequest(organization_id=w["org"], group_id=w["group"], request_id="r\x00",
                                    patch=pb.GroupPatch(is_public=True))  # fmt: skip
    err = refused(stub, "UpdateGroup", request, token=token)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == [("request_id", NUL)]


# Defect 4: SQLite refuses a LIKE pattern over 50,000 bytes: INTERNAL.
@pytest.mark.parametrize("size", [2001, 50_000, 200_000])
def test_a_huge_query_is_invalid_argument(stub: Any, w: dict[str, Any], size: int) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query="x" * size))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == [("query", "Ensure this field has no more than 2000 characters.")]


def test_free_text_past_1000_characters_is_refused_by_the_search_itself(stub: Any, w: dict[str, Any]) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query=" ".join(["é" * 500] * 3)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000" in field_violations(err)[0][1]


def test_free_text_of_1000_multibyte_characters_runs(stub: Any, w: dict[str, Any]) -> None:
    err = refused(stub, "BulkUpdateGroups", bulk(w, query="\U0001f600%_" * 333))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # the LIKE ran on the database


# Defect 5: past 65,535 bound parameters PostgreSQL's driver failed: INTERNAL.
@pytest.mark.parametrize(("field", "item", "limit"), [("project_ids", 1, 1000), ("environments", "e", 100)])
@pytest.mark.parametrize("extra", [1, 65_536])
def test_too_many_projects_or_environments_are_invalid_argument(
    stub: Any, w: dict[str, Any], field: str, item: Any, limit: int, extra: int
) -> None:
    request = bulk(w, group_ids=[w["group"]])
    getattr(request, field).extend([item] * (limit + extra))
    err = refused(stub, "BulkUpdateGroups", request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == [(field, f"Ensure this field has no more than {limit} elements.")]


def test_1000_project_ids_pass_the_edge_limit(stub: Any, w: dict[str, Any]) -> None:
    ids = [w["project"], *range(10**9, 10**9 + 999)]
    err = refused(stub, "BulkUpdateGroups", bulk(w, query="", project_ids=ids))
    # Past the limit; refused only because the made-up ids are no projects of the organization.
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "You do not have access to the requested project"
    same = [w["project"]] * 1000
    reply = stub.BulkUpdateGroups(bulk(w, query="", project_ids=same), metadata=metadata("admin"), timeout=30)
    assert list(reply.matched_group_ids) == [w["group"]]


def test_several_violations_are_reported_together(stub: Any, w: dict[str, Any]) -> None:
    request = bulk(w, page_token="not a token!", request_id="x" * 129, sort=99)  # type: ignore[arg-type]
    err = refused(stub, "BulkUpdateGroups", request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field_violations(err)) == [
        ("page_token", "Invalid cursor parameter."),
        ("request_id", "Ensure this field has no more than 128 characters."),
        ("sort", '"99" is not a valid choice.'),
    ]
    assert err.details() == 'sort: "99" is not a valid choice. (and 2 more)'


def test_a_field_without_a_declared_limit_still_gets_the_baseline() -> None:
    from google.protobuf import timestamp_pb2

    field = pb.BulkUpdateGroupsRequest.DESCRIPTOR.fields_by_name["query"]
    assert limits._baseline(field) == limits.Text(limits.DEFAULT_TEXT)
    found: limits.Violations = []
    limits.TIMESTAMP.check(timestamp_pb2.Timestamp(seconds=-1), "since", field, found)
    limits.TIMESTAMP.check(timestamp_pb2.Timestamp(seconds=10**9), "since", field, found)
    assert found == [("since", "Ensure this date is between 1970-01-01 and 9999-12-30.")]
