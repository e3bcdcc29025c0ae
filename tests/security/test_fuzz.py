"""Hostile input: generated requests, malformed metadata and raw bytes on the wire never get
UNKNOWN or INTERNAL, and a refused call leaves the database exactly as it was."""

from __future__ import annotations

import os
import random
import string
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from issues.v1 import issue_service_pb2 as pb

from tests import factories as f
from tests import query_grammar
from tests.conftest import TOKENS
from tests.security.support import fingerprint

I64 = (-(2**63), 2**63 - 1)
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}
SERVICE = "/issues.v1.IssueService/"
STREAMING = frozenset({"StreamBulkUpdateGroups"})
HUGE = "x" * 200_000
# CI runs a modest number; `make fuzz` runs 20,000 generated calls on each backend.
CALLS = int(os.environ.get("FUZZ_CALLS", "800"))
RAW_CALLS = int(os.environ.get("FUZZ_RAW_CALLS", "300"))
FUZZ = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture()
def world(database: str) -> dict[str, Any]:
    o, other = f.org(), f.org()
    p, q = f.project(o), f.project(o)
    t = f.team(o, projects=(p,))
    users = [f.user(), f.user()]
    f.member(o, users[0], teams=(t,))
    f.member(o, users[1], role="billing")
    release = f.release(p, "1.0.0")
    f.commit(o, key="abc123", releases=(release,))
    groups = [f.group(p).id, f.group(p).id, f.group(q).id, f.group(f.project(other)).id]
    return {
        "org": o.id,
        "other": other.id,
        "users": [u.id for u in users],
        "groups": groups,
        "projects": [p.id, q.id],
        "team": t.id,
        "usernames": [u.username for u in users],
    }


class Gen:
    """Builds hostile calls from a hypothesis-drawn Random, so the mix is ours to weigh: most
    calls are plausible enough to pass auth and lookups and reach deep code; the rest are not."""

    def __init__(self, rnd: random.Random, world: dict[str, Any]) -> None:
        self.rnd = rnd
        self.world = world

    def likely(self, p: float = 0.8) -> bool:
        return self.rnd.random() < p

    def int64(self, *plausible: int) -> int:
        if plausible and self.likely():
            return self.rnd.choice(plausible)
        edges = [0, -1, 1, 2**31 - 1, 2**31, 10**12, *I64]
        return self.rnd.choice(edges) if self.likely(0.5) else self.rnd.randint(*I64)

    def enum(self, *valid: int) -> int:
        if self.likely():
            return self.rnd.choice(valid)
        return self.rnd.choice([0, -1, 8, 99, 2**31 - 1, -(2**31)])

    def text(self, *plausible: str) -> str:
        if plausible and self.likely(0.6):
            return self.rnd.choice(plausible)
        if self.likely(0.5):
            return self.rnd.choice(SPECIAL_TEXTS)
        return "".join(
            chr(self.rnd.choice([0, 9, 32, 65, 0xE9, 0x4E2D, 0x1F600, 0x10FFFF]))
            for _ in range(self.rnd.randint(0, 12))
        )

    def call(self) -> tuple[str, Any, tuple[tuple[str, str], ...]]:
        method = self.rnd.choice(["GetGroup", "UpdateGroup", "BulkUpdateGroups", "BulkUpdateGroups"])
        org = self.world["org"] if self.likely(0.85) else self.int64(self.world["other"])
        if method == "GetGroup":
            return (
                method,
                pb.GetGroupRequest(organization_id=org, group_id=self.group()),
                self.meta(),
            )
        if method == "UpdateGroup":
            request = pb.UpdateGroupRequest(organization_id=org, group_id=self.group(), patch=self.patch())
            if not self.likely(0.9):
                request.etag = self.rnd.choice(["stale", "\x00", HUGE])
            if not self.likely(0.95):
                request.request_id = "r1"
            return method, request, self.meta()
        if self.likely(0.1):
            method = "StreamBulkUpdateGroups"
        return method, self.bulk(org), self.meta()

    def count(self) -> int:
        """How many items a list gets: mostly a few, now and then past a limit or PostgreSQL's
        65,535 bound parameters."""
        return self.rnd.choice([1, 2, 2, 3, 101, 1001]) if self.likely(0.97) else 65_536

    def group(self) -> int:
        return self.int64(*self.world["groups"], *self.world["groups"][:2])

    def bulk(self, org: int) -> pb.BulkUpdateGroupsRequest:
        size = self.rnd.choice([1, 1, 2, 3]) if self.likely(0.97) else 1001
        request = pb.BulkUpdateGroupsRequest(
            organization_id=org,
            group_ids=[self.group() for _ in range(size)],
            patch=self.patch(),
            validate_only=self.likely(0.15),
        )
        if not self.likely(0.9):
            request.project_ids.extend(self.int64(*self.world["projects"]) for _ in range(self.count()))
        if not self.likely(0.95):
            request.environments.extend(self.text("production") for _ in range(self.count()))
        if not self.likely(0.95):
            request.query = self.text("is:unresolved", "")
        elif not self.likely(0.7):
            request.group_ids[:] = []  # a search selection, with a grammar-aware query
            names = [*self.world["usernames"], "1.0.0", "production", *map(str, self.world["users"])]
            request.query = query_grammar.query(self.rnd, names)
        if not self.likely(0.97):
            request.request_id = self.rnd.choice(["r\x00", "x" * 129, "\u00e9", "r 1", "ok-1"])
        if not self.likely(0.95):
            request.sort = self.enum(1, 2, 3, 4)
        if not self.likely(0.95):
            request.page_token = self.text()
        return request

    def patch(self) -> pb.GroupPatch:
        patch = pb.GroupPatch()
        for name, valid, chance in (
            ("status", (1, 2, 3, 4, 5), 0.6),
            ("substatus", (1, 2, 3, 4, 5, 6, 7), 0.15),
            ("priority", (25, 50, 75), 0.2),
        ):
            if self.likely(chance):
                setattr(patch, name, self.enum(*valid))
        for name in BOOL_FIELDS:
            if self.likely(0.08):
                setattr(patch, name, self.likely(0.5))
        for name in INT_FIELDS:
            if self.likely(0.06):
                setattr(patch, name, self.int64(0, 1, 5, 60, 10080, 10081, *self.world["groups"]))
        if self.likely(0.03):
            patch.integration = self.text()
        if self.likely(0.3):
            self.status_details(patch.status_details)
        if self.likely(0.25):
            self.assignee(patch.assigned_to)
        return patch

    def status_details(self, details: pb.StatusDetailsUpdate) -> None:
        details.SetInParent()
        which = self.rnd.choice(["in_release", "in_next_release", "in_commit", None])
        if which == "in_release":
            details.in_release = self.text("1.0.0", "latest", "2.0.0")
        elif which == "in_next_release":
            details.in_next_release = self.likely(0.7)
        elif which == "in_commit":
            details.in_commit.commit = self.text("abc123")
            details.in_commit.repository = self.text("acme/app")
        for name in IGNORE_FIELDS:
            if self.likely(0.15):
                setattr(details, name, self.int64(0, 1, 5, 60, 10080, 10081))

    def assignee(self, target: pb.AssigneeUpdate) -> None:
        target.SetInParent()
        users = [str(u) for u in self.world["users"]]
        which = self.rnd.choice(["user_id", "team_id", "username", "email", "unassign", "actor", None])
        if which in ("user_id", "team_id"):
            setattr(target, which, self.int64(*self.world["users"], self.world["team"]))
        elif which == "unassign":
            target.unassign = self.likely(0.8)
        elif which == "actor":
            target.actor = self.text(*(f"user:{u}" for u in users), f"team:{self.world['team']}", "me")
        elif which is not None:
            target_value = self.text(*self.world["usernames"], "nobody@example.com")
            setattr(target, which, target_value)

    def meta(self) -> tuple[tuple[str, str], ...]:
        pairs: list[tuple[str, str]] = []
        if self.likely(0.85):
            pairs.append(("authorization", f"Bearer {self.rnd.choice(SECRETS)}"))
        elif self.likely(0.8):
            pairs.append(("authorization", self.rnd.choice(BAD_AUTH)))
        if self.likely(0.6):
            pairs.append(("x-acting-user-id", str(self.rnd.choice(self.world["users"]))))
        elif self.likely(0.3):
            pairs.append(("x-acting-user-id", self.rnd.choice(BAD_USERS)))
        # Rare events are "not likely": hypothesis's simplest draws are random() == 0.
        if not self.likely(0.97):  # a second identity header: UNAUTHENTICATED whatever it says
            again = ("authorization", f"Bearer {self.rnd.choice(SECRETS)}")
            if self.likely(0.5):
                again = ("x-acting-user-id", str(self.rnd.choice(self.world["users"])))
            pairs.append(again)
        if self.likely(0.1):
            key = "x-" + "".join(self.rnd.choice(HEADER_KEY_CHARS) for _ in range(6))
            pairs.append((key, "".join(self.rnd.choice(HEADER_VALUE_CHARS) for _ in range(20))))
        return tuple(pairs)


SPECIAL_TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "latest",
    "x" * 300,
    "é" * 5000,
    "\ud7ff\U0010ffff",
    "user:",
    "team:x",
    ":",
    "user:99999999999999999999999",
    "user:\u00b2",
    "\u0663",
    HUGE,
]
BOOL_FIELDS = (
    "has_seen",
    "is_bookmarked",
    "is_subscribed",
    "is_public",
    "merge",
    "discard",
    "inbox",
)
INT_FIELDS = (
    "ignore_duration",
    "ignore_count",
    "ignore_window",
    "ignore_user_count",
    "ignore_user_window",
    "snooze_duration",
    "merge_primary_group_id",
)
IGNORE_FIELDS = tuple(f"ignore_{n}" for n in ("duration", "count", "window", "user_count", "user_window"))
SECRETS = [secret for secret, _, _ in TOKENS.values()]
BAD_AUTH = [
    "",
    "Bearer",
    "Bearer ",
    "Basic abc",
    "bearer writer-secret",
    "Bearer wrong",
    "Bearer  writer-secret ",
    "Bearer " + "x" * 4000,
]
BAD_USERS = ["", "abc", "-1", "0", "99999999999999999999", " 1", "1.0", "999999", "+1", "1_0"]
HEADER_KEY_CHARS = string.ascii_lowercase + string.digits + "-_."
HEADER_VALUE_CHARS = string.printable.strip("\t\n\r\x0b\x0c")


class Checker:
    """Sends calls and holds the invariant: refused calls and dry runs leave no trace."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.sent = 0
        self.before = fingerprint()
        self.codes: dict[grpc.StatusCode, int] = {}

    def call(self, method: str, payload: Any, metadata: Any, *, raw: bool = False) -> None:
        serializer: Callable[[Any], bytes] | None = None if raw else type(payload).SerializeToString
        kind = self.channel.unary_stream if method in STREAMING else self.channel.unary_unary
        stub = kind(SERVICE + method, request_serializer=serializer, response_deserializer=None)
        code = grpc.StatusCode.OK
        try:
            reply = stub(payload, metadata=metadata, timeout=30)
            if method in STREAMING:
                list(reply)
        except grpc.RpcError as err:
            code = err.code()
            assert code not in FORBIDDEN, (method, payload, metadata, err.details())
        self.sent += 1
        self.codes[code] = self.codes.get(code, 0) + 1
        after = fingerprint()
        if code != grpc.StatusCode.OK or getattr(payload, "validate_only", False):
            assert after == self.before, (method, payload, metadata, code)
        self.before = after


@pytest.mark.slow
def test_generated_requests_never_fail_internally(stub: Any, channel: grpc.Channel, world: dict[str, Any]) -> None:
    checker = Checker(channel)

    @settings(max_examples=CALLS // 4, **FUZZ)
    @given(st.randoms(use_true_random=False))
    def run(rnd: random.Random) -> None:
        gen = Gen(rnd, world)
        calls = [gen.call() for _ in range(4)]  # drawn first: replays draw the same data
        for call in calls:
            checker.call(*call)

    run()
    print(f"fuzz: {checker.sent} calls, codes {sorted((c.name, n) for c, n in checker.codes.items())}")
    assert checker.sent >= CALLS
    # The mix reaches deep code: a tenth of the calls succeed, many more fail validation.
    assert checker.codes.get(grpc.StatusCode.OK, 0) >= checker.sent // 10
    assert checker.codes.get(grpc.StatusCode.INVALID_ARGUMENT, 0) >= checker.sent // 10


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf)


@pytest.mark.slow
def test_raw_and_mutated_bytes_on_the_wire_never_fail_internally(
    stub: Any, channel: grpc.Channel, world: dict[str, Any]
) -> None:
    checker = Checker(channel)
    valid = ("authorization", f"Bearer {TOKENS['admin'][0]}")

    @settings(max_examples=RAW_CALLS, **FUZZ)
    @given(
        st.sampled_from(["GetGroup", "UpdateGroup", "BulkUpdateGroups", "StreamBulkUpdateGroups"]),
        st.binary(max_size=300),
        st.randoms(use_true_random=False),
    )
    def run(method: str, data: bytes, rnd: random.Random) -> None:
        if rnd.random() < 0.5:  # half pure noise, half a valid request with a few bytes changed
            method, request, _ = Gen(rnd, world).call()
            edits = [(rnd.randrange(10**6), rnd.randrange(256)) for _ in range(rnd.randint(1, 4))]
            data = mutate(request.SerializeToString(), edits)
        checker.call(method, data, (valid,), raw=True)

    run()
    assert checker.sent >= RAW_CALLS


TOO_LONG = ": Ensure this value is less than or equal to 2147483647."
# A NUL can be in no stored name and PostgreSQL refuses it in a query: the edge limits refuse it
# on every string field, naming the field.
HOSTILE = [
    (
        pb.GroupPatch(status_details=pb.StatusDetailsUpdate(in_release="a\x00b")),
        "patch.status_details.in_release: ",
    ),
    (
        pb.GroupPatch(
            status=1,
            status_details=pb.StatusDetailsUpdate(in_commit=pb.InCommit(commit="\x00", repository="acme/app")),
        ),
        "patch.status_details.in_commit",
    ),
    (pb.GroupPatch(assigned_to=pb.AssigneeUpdate(username="a\x00")), "patch.assigned_to.username: Null characters"),
    (pb.GroupPatch(assigned_to=pb.AssigneeUpdate(email="\x00@x")), "patch.assigned_to.email: Null characters"),
    (pb.GroupPatch(assigned_to=pb.AssigneeUpdate(actor="user:\x00")), "patch.assigned_to.actor: Null characters"),
    (pb.GroupPatch(status=3, ignore_duration=2**63 - 1), "patch.ignore_duration" + TOO_LONG),
    (pb.GroupPatch(status=3, snooze_duration=2**31), "patch.ignore_duration" + TOO_LONG),
    (pb.GroupPatch(status=3, ignore_count=2**63 - 1), "patch.ignore_count" + TOO_LONG),
    (
        pb.GroupPatch(status=3, status_details=pb.StatusDetailsUpdate(ignore_duration=10**12)),
        "patch.status_details.ignore_duration" + TOO_LONG,
    ),
]


@pytest.mark.parametrize(("patch", "expected"), HOSTILE)
def test_known_hostile_patches_are_refused_with_a_field_violation(
    stub: Any, world: dict[str, Any], patch: pb.GroupPatch, expected: str
) -> None:
    before = fingerprint()
    request = pb.BulkUpdateGroupsRequest(organization_id=world["org"], group_ids=world["groups"][:2], patch=patch)
    with pytest.raises(grpc.RpcError) as info:
        stub.BulkUpdateGroups(request, metadata=(("authorization", "Bearer admin-secret"),), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(expected)
    assert fingerprint() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("environments", ["prod\x00"]), ("query", "is:unresolved\x00"), ("page_token", "\x00")],
)
def test_null_characters_in_selection_fields_are_refused(
    stub: Any, world: dict[str, Any], field: str, value: Any
) -> None:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=world["org"],
        group_ids=world["groups"][:1],
        patch=pb.GroupPatch(is_public=True),
    )
    if isinstance(value, list):
        getattr(request, field).extend(value)
    else:
        setattr(request, field, value)
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        stub.BulkUpdateGroups(request, metadata=(("authorization", "Bearer admin-secret"),), timeout=10)
    assert info.value.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    assert fingerprint() == before
