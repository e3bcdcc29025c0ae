"""Concurrency: many callers on the same groups at once, through one in-process server and through
two server processes sharing one database. Every call succeeds or is ABORTED/UNAVAILABLE; no
update is lost, no row is duplicated, and no activity exists without its state change."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc
from peewee import fn

from server.core.enums import ActivityType, GroupStatus
from server.storage.models import (
    Activity,
    Group,
    GroupAssignee,
    GroupBookmark,
    GroupInbox,
    GroupResolution,
    GroupSeen,
    GroupShare,
    GroupSnooze,
    GroupSubscription,
)
from tests import factories as f
from tests.conftest import BACKEND, TOKENS, metadata
from tests.security.support import ServerProcess, start_server, write_tokens

THREADS, CALLS = 8, 25
ACCEPTABLE = {grpc.StatusCode.OK, grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE}
STATUSES = (pb.STATUS_UPDATE_RESOLVED, pb.STATUS_UPDATE_UNRESOLVED, pb.STATUS_UPDATE_IGNORED)
# Natural keys that must never repeat, whatever the interleaving.
UNIQUE_KEYS = [
    (GroupAssignee, ("group",)),
    (GroupSnooze, ("group",)),
    (GroupResolution, ("group",)),
    (GroupShare, ("group",)),
    (GroupInbox, ("group",)),
    (GroupBookmark, ("group", "user")),
    (GroupSubscription, ("group", "user")),
    (GroupSeen, ("group", "user")),
]


@pytest.fixture()
def shared(database: str) -> dict[str, Any]:
    o = f.org()
    p = f.project(o)
    t = f.team(o, projects=(p,))
    users = [f.user() for _ in range(4)]
    for u in users:
        f.member(o, u, teams=(t,))
    groups = [f.group(p).id for _ in range(5)]
    return {"org": o.id, "users": [u.id for u in users], "groups": groups}


def random_patch(rnd: random.Random, users: list[int]) -> pb.GroupPatch:
    kind = rnd.choice(["status", "status", "assign", "bookmark", "subscribe", "public", "seen"])
    if kind == "status":
        return pb.GroupPatch(status=rnd.choice(STATUSES))
    if kind == "assign":
        if rnd.random() < 0.3:
            return pb.GroupPatch(assigned_to=pb.AssigneeUpdate(unassign=True))
        return pb.GroupPatch(assigned_to=pb.AssigneeUpdate(user_id=rnd.choice(users)))
    flag = rnd.random() < 0.6
    name = {"bookmark": "is_bookmarked", "subscribe": "is_subscribed", "public": "is_public",
            "seen": "has_seen"}[kind]  # fmt: skip
    return pb.GroupPatch(**{name: flag})


def worker(stubs: list[Any], world: dict[str, Any], seed: int) -> list[tuple[Any, Any]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(CALLS):
        ids = rnd.sample(world["groups"], rnd.randint(1, len(world["groups"])))
        patch = random_patch(rnd, world["users"])
        request = pb.BulkUpdateGroupsRequest(organization_id=world["org"], group_ids=ids, patch=patch)
        user = rnd.choice(world["users"])
        try:
            reply = rnd.choice(stubs).BulkUpdateGroups(request, metadata=metadata(user_id=user), timeout=60)
            out.append((grpc.StatusCode.OK, reply))
        except grpc.RpcError as err:
            out.append((err.code(), err.details()))
    return out


def run_mix(stubs: list[Any], world: dict[str, Any]) -> list[tuple[Any, Any]]:
    with ThreadPoolExecutor(THREADS) as pool:
        parts = pool.map(lambda s: worker(stubs, world, s), range(THREADS))
        return [r for part in parts for r in part]


def assert_consistent(world: dict[str, Any], results: list[tuple[Any, Any]]) -> None:
    codes = Counter(code for code, _ in results)
    assert set(codes) <= ACCEPTABLE, [r for r in results if r[0] not in ACCEPTABLE][:3]
    assert codes[grpc.StatusCode.OK] >= len(results) // 2, codes  # contention, not failure
    assert_no_duplicates()
    assert_versions_count_every_committed_change(world, results)
    assert_last_activity_matches_state(world)


def assert_no_duplicates() -> None:
    for model, columns in UNIQUE_KEYS:
        keys = [getattr(model, c) for c in columns]
        dupes = model.select(*keys).group_by(*keys).having(fn.COUNT(model.id) > 1)
        assert list(dupes.tuples()) == [], model.__name__


def assert_versions_count_every_committed_change(world: dict[str, Any], results: list[tuple[Any, Any]]) -> None:
    changed: Counter[int] = Counter()
    for code, reply in results:
        if code == grpc.StatusCode.OK:
            changed.update(o.group_id for o in reply.outcomes if o.outcome == pb.OUTCOME_CHANGED)
    versions = {g.id: g.version - 1 for g in Group.select().where(Group.id.in_(world["groups"]))}
    assert versions == {gid: changed[gid] for gid in world["groups"]}


LAST_STATUS = {
    ActivityType.SET_RESOLVED: GroupStatus.RESOLVED,
    ActivityType.SET_UNRESOLVED: GroupStatus.UNRESOLVED,
    ActivityType.SET_IGNORED: GroupStatus.IGNORED,
}


def last_activity(group_id: int, types: list[int]) -> int | None:
    row = (
        Activity.select(Activity.type)
        .where((Activity.group == group_id) & Activity.type.in_(types))
        .order_by(Activity.id.desc())
        .first()
    )
    return row.type if row else None


def assert_last_activity_matches_state(world: dict[str, Any]) -> None:
    """Activity and state change commit together, so the newest activity names the state."""
    for gid in world["groups"]:
        group = Group.get_by_id(gid)
        status = last_activity(gid, [int(t) for t in LAST_STATUS])
        expected = GroupStatus.UNRESOLVED if status is None else LAST_STATUS[ActivityType(status)]
        assert group.status == expected, gid
        assigned = last_activity(gid, [ActivityType.ASSIGNED, ActivityType.UNASSIGNED])
        has_assignee = GroupAssignee.select().where(GroupAssignee.group == gid).exists()
        assert has_assignee == (assigned == ActivityType.ASSIGNED), gid
        public = last_activity(gid, [ActivityType.SET_PUBLIC, ActivityType.SET_PRIVATE])
        has_share = GroupShare.select().where(GroupShare.group == gid).exists()
        assert has_share == (public == ActivityType.SET_PUBLIC), gid


@pytest.mark.slow
def test_concurrent_mixed_updates_through_one_server_stay_consistent(stub: Any, shared: dict[str, Any]) -> None:
    results = run_mix([stub], shared)
    assert len(results) == THREADS * CALLS
    assert_consistent(shared, results)


def test_updates_of_different_fields_on_the_same_groups_all_survive(stub: Any, shared: dict[str, Any]) -> None:
    ids, users = shared["groups"], shared["users"]
    patches = [
        pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
        pb.GroupPatch(assigned_to=pb.AssigneeUpdate(user_id=users[0])),
        pb.GroupPatch(is_public=True),
        *[pb.GroupPatch(is_bookmarked=True) for _ in users],
    ]
    acting = [users[0], users[0], users[0], *users]
    barrier = threading.Barrier(len(patches))

    def send(i: int) -> grpc.StatusCode:
        request = pb.BulkUpdateGroupsRequest(organization_id=shared["org"], group_ids=ids,
                                             patch=patches[i])  # fmt: skip
        barrier.wait(timeout=30)
        for _ in range(5):  # ABORTED/UNAVAILABLE ask for a retry; the test retries like a client
            try:
                stub.BulkUpdateGroups(request, metadata=metadata(user_id=acting[i]), timeout=60)
                return grpc.StatusCode.OK
            except grpc.RpcError as err:
                assert err.code() in ACCEPTABLE, err.details()
        return grpc.StatusCode.ABORTED

    with ThreadPoolExecutor(len(patches)) as pool:
        assert set(pool.map(send, range(len(patches)))) == {grpc.StatusCode.OK}
    groups = list(Group.select().where(Group.id.in_(ids)))
    assert {g.status for g in groups} == {GroupStatus.RESOLVED}
    assert GroupAssignee.select().where(GroupAssignee.user == users[0]).count() == len(ids)
    assert GroupShare.select().count() == len(ids)
    assert GroupBookmark.select().count() == len(ids) * len(users)
    assert_no_duplicates()


@pytest.fixture()
def two_processes(shared: dict[str, Any], database: str, tmp_path: Path) -> Iterator[list[Any]]:
    tokens = tmp_path / "tokens.json"
    write_tokens(tokens, {name: (s, sorted(scopes)) for name, (s, scopes, _) in TOKENS.items()})
    servers: list[ServerProcess] = []
    channels: list[grpc.Channel] = []
    try:
        for _ in range(2):
            servers.append(start_server(database, tokens, "--workers", "4"))
        channels = [grpc.insecure_channel(s.target) for s in servers]
        yield [issue_service_pb2_grpc.IssueServiceStub(c) for c in channels]
    finally:
        for c in channels:
            c.close()
        for s in servers:
            s.stop()


@pytest.mark.slow
def test_two_server_processes_on_one_database_stay_consistent(two_processes: list[Any], shared: dict[str, Any]) -> None:
    results = run_mix(two_processes, shared)
    assert_consistent(shared, results)


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single-writer lock")
def test_a_briefly_held_sqlite_write_lock_is_waited_out(stub: Any, shared: dict[str, Any], database: str) -> None:
    holder = sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, holder.rollback).start()
    request = pb.BulkUpdateGroupsRequest(organization_id=shared["org"], group_ids=shared["groups"],
                                         patch=pb.GroupPatch(is_public=True))  # fmt: skip
    stub.BulkUpdateGroups(request, metadata=metadata(user_id=shared["users"][0]), timeout=60)
    assert GroupShare.select().count() == len(shared["groups"])
    holder.close()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single-writer lock")
def test_a_sqlite_write_lock_held_past_every_retry_is_unavailable_not_locked(
    stub: Any, shared: dict[str, Any], database: str
) -> None:
    # One attempt: it waited out busy_timeout (5 s), so it is not retried (unit_of_work.RETRY_WITHIN).
    holder = sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        request = pb.BulkUpdateGroupsRequest(organization_id=shared["org"],
                                             group_ids=shared["groups"],
                                             patch=pb.GroupPatch(is_public=True))  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            stub.BulkUpdateGroups(request, metadata=metadata(user_id=shared["users"][0]), timeout=60)
    finally:
        holder.rollback()
        holder.close()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "database busy; retry later"
    assert GroupShare.select().count() == 0
