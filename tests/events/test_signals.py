"""Every side-effect signal of sentry-semantics §3 reaches the outbox, once per changed group."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from server.core.commands import Assignee
from server.core.enums import ActivityType, GroupStatus, GroupSubStatus, InboxReason
from server.storage.models import GroupInbox, OutboxEvent
from server.transport.event_convert import KINDS
from tests import factories as f
from tests.core.helpers import bulk

CORE = Path(__file__).resolve().parents[2] / "server" / "core"


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _events() -> Counter[tuple[str, int]]:
    return Counter((e.kind, e.group_id) for e in OutboxEvent.select())


def _unresolved(w: dict[str, Any], n: int = 2) -> list[int]:
    return [f.group(w["project"]).id for _ in range(n)]


def test_every_kind_the_core_emits_is_in_the_event_catalogue() -> None:
    emitted = {
        node.args[0].value
        for path in CORE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "notify" and node.args
        and isinstance(node.args[0], ast.Constant)
    }  # fmt: skip
    assert "issue.archived" in emitted
    assert emitted <= set(KINDS), f"kinds missing from events.proto: {sorted(emitted - set(KINDS))}"


def test_archive_until_escalating_emits_issue_archived_and_ignored_once_per_changed_group(w: dict) -> None:
    a, b = _unresolved(w)
    already = f.group(w["project"], status=int(GroupStatus.IGNORED), substatus=int(GroupSubStatus.FOREVER)).id
    bulk(w["org"].id, [a, b, already], user_id=w["user"].id, status="ignored",
         substatus=int(GroupSubStatus.UNTIL_ESCALATING))  # fmt: skip
    assert _events() == Counter({("issue.ignored", a): 1, ("issue.ignored", b): 1,
                                 ("issue.archived", a): 1, ("issue.archived", b): 1})  # fmt: skip
    archived = OutboxEvent.get(OutboxEvent.kind == "issue.archived")
    assert archived.payload == {"until_escalating": True}
    ignored = OutboxEvent.get((OutboxEvent.kind == "issue.ignored") & (OutboxEvent.group_id == a))
    assert ignored.payload["substatus"] == GroupSubStatus.UNTIL_ESCALATING
    assert ignored.payload["ignoreUntilEscalating"] is True


def test_resolve_skips_already_resolved_groups(w: dict) -> None:
    a, b = _unresolved(w)
    done = f.group(w["project"], status=int(GroupStatus.RESOLVED), substatus=None).id
    bulk(w["org"].id, [a, b, done], user_id=w["user"].id, status="resolved")
    assert _events() == Counter({("issue.resolved", a): 1, ("issue.resolved", b): 1})


def test_unresolve_says_unresolved_or_unignored_and_nothing_for_unchanged(w: dict) -> None:
    resolved = f.group(w["project"], status=int(GroupStatus.RESOLVED), substatus=None).id
    ignored = f.group(w["project"], status=int(GroupStatus.IGNORED), substatus=int(GroupSubStatus.FOREVER)).id
    unchanged = f.group(w["project"]).id
    bulk(w["org"].id, [resolved, ignored, unchanged], user_id=w["user"].id, status="unresolved")
    assert _events() == Counter({("issue.unresolved", resolved): 1, ("issue.unignored", ignored): 1})


def test_assign_again_and_unassign_emit_only_for_real_changes(w: dict) -> None:
    a, b = _unresolved(w)
    me = Assignee("user_id", w["user"].id)
    bulk(w["org"].id, [a], user_id=w["user"].id, assigned_to=me)
    bulk(w["org"].id, [a, b], user_id=w["user"].id, assigned_to=me)  # a: same assignee again
    bulk(w["org"].id, [b], user_id=w["user"].id, assigned_to=Assignee("unassign"))
    assigned = int(ActivityType.ASSIGNED)
    assert _events() == Counter({("issue.assigned", a): 1, ("issue.assigned", b): 1, ("issue.unassigned", b): 1,
                                 ("activity.notification", a): 1, ("activity.notification", b): 2})  # fmt: skip
    notes = [
        e.payload["activity_type"] for e in OutboxEvent.select().where(OutboxEvent.kind == "activity.notification")
    ]
    assert sorted(notes) == sorted([assigned, assigned, int(ActivityType.UNASSIGNED)])


def test_priority_share_and_review_signal_changed_groups_only(w: dict) -> None:
    a = f.group(w["project"], priority=50).id
    same = f.group(w["project"], priority=75).id
    bulk(w["org"].id, [a, same], user_id=w["user"].id, priority=75)
    assert _events() == Counter({("issue.priority_updated", a): 1, ("activity.notification", a): 1})
    OutboxEvent.delete().execute()
    bulk(w["org"].id, [a, same], user_id=w["user"].id, is_public=True)
    bulk(w["org"].id, [a], user_id=w["user"].id, is_public=False)
    assert _events() == Counter({("issue.shared", a): 1, ("issue.shared", same): 1, ("issue.unshared", a): 1})
    OutboxEvent.delete().execute()
    GroupInbox.create(group=a, project=w["project"], organization=w["org"], reason=InboxReason.NEW)
    bulk(w["org"].id, [a, same], user_id=w["user"].id, inbox=False)
    assert _events() == Counter({("issue.mark_reviewed", a): 1})


def test_merge_emits_one_merged_event_for_the_primary_with_its_children(w: dict) -> None:
    ids = _unresolved(w, 3)
    result = bulk(w["org"].id, ids, user_id=w["user"].id, merge=True)
    assert result.applied.merge is not None
    primary, children = result.applied.merge.parent, result.applied.merge.children
    assert _events() == Counter({("issue.merged", primary): 1})
    assert OutboxEvent.get(OutboxEvent.kind == "issue.merged").payload == {"children": children}


def test_events_carry_organization_project_actor_and_no_request_id_from_the_core(w: dict) -> None:
    a, _b = _unresolved(w)
    bulk(w["org"].id, [a], user_id=w["user"].id, status="resolved")
    row = OutboxEvent.get(OutboxEvent.kind == "issue.resolved")
    assert (row.organization_id, row.project_id, row.actor_id) == (w["org"].id, w["project"].id, w["user"].id)
    assert row.request_id is None  # set by the transport from x-request-id (test_watch checks it)
