"""Bulk replies say what happened to each group; multi-project rules refuse before writes (§5.1)."""

from __future__ import annotations

import pytest

from server.core import update
from server.core.commands import InCommit, Selection, StatusDetails, UpdateCommand
from server.core.errors import InvalidArgument, NotFound
from server.core.merge import ACROSS_PROJECTS
from server.core.resolution import MULTI_PROJECT
from server.storage.models import (
    Activity,
    Group,
    GroupBookmark,
    GroupLink,
    GroupResolution,
    OutboxEvent,
    ReleaseProject,
)
from tests import factories as f
from tests.core.helpers import bulk, caller


@pytest.fixture()
def w(database: str) -> dict:
    return f.world()


def outcomes(result: object) -> dict[int, tuple[str, str]]:
    return {o.group_id: (o.outcome, o.reason) for o in result.outcomes}  # type: ignore[attr-defined]


def test_explicit_ids_pending_deletion_or_merge_are_skipped_with_a_reason(w: dict) -> None:
    live = f.group(w["project"])
    deleting = f.group(w["project"], status=3, substatus=None)
    in_progress = f.group(w["project"], status=4, substatus=None)
    merged = f.group(w["project"], status=5, substatus=None)
    result = bulk(w["org"].id, [live.id, deleting.id, in_progress.id, merged.id], status="resolved")
    assert outcomes(result) == {
        live.id: ("changed", ""),
        deleting.id: ("skipped", "pending deletion"),
        in_progress.id: ("skipped", "pending deletion"),
        merged.id: ("skipped", "merged into another issue"),
    }
    assert result.matched_group_ids == sorted([live.id, deleting.id, in_progress.id, merged.id])
    assert result.matched_count == 4
    statuses = {g.id: g.status for g in Group.select()}
    assert statuses == {live.id: 1, deleting.id: 3, in_progress.id: 4, merged.id: 5}
    assert Activity.select().where(Activity.group != live.id).count() == 0


def test_ids_that_are_all_hidden_are_reported_and_nothing_is_written(w: dict) -> None:
    merged = f.group(w["project"], status=5, substatus=None)
    result = bulk(w["org"].id, [merged.id], status="resolved")
    assert outcomes(result) == {merged.id: ("skipped", "merged into another issue")}
    assert result.applied.status is None
    assert Group.get_by_id(merged.id).status == 5
    assert Activity.select().count() == OutboxEvent.select().count() == 0


def test_unchanged_groups_are_told_apart_from_changed_ones(w: dict) -> None:
    done = f.group(w["project"], status=1, substatus=None)
    open_ = f.group(w["project"])
    result = bulk(w["org"].id, [done.id, open_.id], status="resolved")
    assert outcomes(result) == {done.id: ("unchanged", ""), open_.id: ("changed", "")}


def test_validate_only_reports_the_outcomes_and_writes_nothing(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolved", validate_only=True)
    assert result.validate_only
    assert outcomes(result) == {g.id: ("changed", "")}
    assert Group.get_by_id(g.id).status == 0
    assert Activity.select().count() == OutboxEvent.select().count() == 0


def test_ids_of_another_organization_are_out_of_scope(w: dict) -> None:
    other = f.world()
    theirs = f.group(other["project"])
    with pytest.raises(NotFound):
        bulk(w["org"].id, [theirs.id], status="resolved")
    mine = f.group(w["project"])
    result = bulk(w["org"].id, [mine.id, theirs.id], status="resolved")
    assert result.matched_group_ids == [mine.id]
    assert Group.get_by_id(theirs.id).status == 0


def test_release_resolution_across_projects_is_refused_before_writing(w: dict) -> None:
    second = f.sibling_project(w)
    a, b = f.group(w["project"]), f.group(second)
    f.release(w["project"], "1.0")
    f.release(second, "1.0-b")
    spec = Selection(organization_id=w["org"].id, query="is:unresolved")
    for command in (
        UpdateCommand(status="resolvedInNextRelease"),
        UpdateCommand(status="resolved", status_details=StatusDetails(in_next_release=True)),
    ):
        with pytest.raises(InvalidArgument) as caught:
            update.bulk_update(caller=caller(), selection_spec=spec, command=command)
        assert MULTI_PROJECT in caught.value.message
    assert {g.status for g in Group.select()} == {0}
    assert GroupResolution.select().count() == Activity.select().count() == 0
    plain = update.bulk_update(caller=caller(), selection_spec=spec, command=UpdateCommand(status="resolved"))
    assert plain.matched_group_ids == sorted([a.id, b.id])
    assert {g.status for g in Group.select()} == {1}


def test_in_release_and_in_commit_across_projects_are_refused_before_writing(w: dict) -> None:
    second = f.sibling_project(w)
    f.group(w["project"])
    f.group(second)
    shared = f.release(w["project"], "2.0")
    ReleaseProject.create(release=shared, project=second)
    f.commit(w["org"], key="abc123", releases=(shared,))
    spec = Selection(organization_id=w["org"].id, query="")
    for details in (
        StatusDetails(in_release="2.0"),
        StatusDetails(in_commit=InCommit(commit="abc123", repository="acme/app")),
    ):
        with pytest.raises(InvalidArgument) as caught:
            update.bulk_update(
                caller=caller(w["user"].id),
                selection_spec=spec,
                command=UpdateCommand(status="resolved", status_details=details, priority=75),
            )
        assert MULTI_PROJECT in caught.value.message
    assert {(g.status, g.priority) for g in Group.select()} == {(0, None)}
    assert GroupLink.select().count() == Activity.select().count() == 0


def test_merge_across_projects_is_refused_before_any_other_field_is_written(w: dict) -> None:
    second = f.sibling_project(w)
    a, b = f.group(w["project"]), f.group(second)
    with pytest.raises(InvalidArgument) as caught:
        update.bulk_update(
            caller=caller(w["user"].id),
            selection_spec=Selection(organization_id=w["org"].id, query=""),
            command=UpdateCommand(merge=True, priority=75, is_bookmarked=True),
        )
    assert ACROSS_PROJECTS in caught.value.message
    assert {g.priority for g in Group.select().where(Group.id.in_([a.id, b.id]))} == {None}
    assert GroupBookmark.select().count() == 0
