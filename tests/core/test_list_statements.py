"""ListGroups reads a page in a fixed number of statements, whatever its size (issue 14 point 10)."""

from __future__ import annotations

from typing import Any

import pytest

from server.core import listing, update
from server.core.commands import Assignee, IgnoreConditions, InCommit, Selection, StatusDetails
from server.core.listing import ListRequest
from tests import factories as f
from tests.core.helpers import bulk, caller
from tests.core.test_paging import many_groups
from tests.statements import recorded

pytestmark = pytest.mark.db


def _busy_world() -> dict[str, Any]:
    """120 groups, each with a share, bookmark, subscription, seen marker, assignee and activities;
    even ones archived with a snooze, odd ones resolved in a commit (the newest is one of those)."""
    w = f.world()
    ids = sorted(many_groups(w["project"], 120))
    uid = w["user"].id
    f.commit(w["org"])
    bulk(w["org"].id, ids, user_id=uid, is_bookmarked=True, is_public=True, has_seen=True)
    bulk(w["org"].id, ids, user_id=uid, assigned_to=Assignee("user_id", uid))
    bulk(w["org"].id, ids[1::2], user_id=uid, status="ignored", top_level_ignore=IgnoreConditions(count=10))
    in_commit = StatusDetails(in_commit=InCommit(commit="abc123", repository="acme/app"))
    bulk(w["org"].id, ids[0::2], user_id=uid, status="resolved", status_details=in_commit)
    return w


def _count(w: dict[str, Any], *, size: int, activities: bool, user: bool = True) -> tuple[int, listing.ListResult]:
    request = ListRequest(Selection(w["org"].id, query=""), page_size=size, include_activities=activities)
    with recorded() as seen:
        result = listing.list_groups(caller=caller(w["user"].id if user else None), request=request)
    return len(seen), result


@pytest.mark.parametrize("activities", [False, True])
def test_statement_count_is_the_same_for_pages_of_1_and_100(database: str, activities: bool) -> None:
    w = _busy_world()
    small, one = _count(w, size=1, activities=activities)
    large, hundred = _count(w, size=100, activities=activities)
    assert (len(one.groups), len(hundred.groups), hundred.total_size) == (1, 100, 120)
    assert small == large
    # organization with the acting user, membership and project access (one statement); page;
    # count; reply rows; commits; activities when asked
    assert large == (6 if activities else 5)
    first = hundred.groups[0]
    assert first.status_details.in_commit is not None and first.status_details.in_commit.key == "abc123"
    assert first.is_bookmarked and first.is_subscribed and first.has_seen and first.share_id
    snoozed = hundred.groups[1]
    assert snoozed.status == "ignored" and snoozed.status_details.ignore_count == 10


def test_batched_activities_are_each_groups_own_newest_first(database: str) -> None:
    w = _busy_world()
    _, result = _count(w, size=3, activities=True)
    for view in result.groups:
        kinds = [a.type for a in view.activities]
        assert kinds[-1] == 9 and len(kinds) >= 3  # ... ending with the synthetic first-seen entry
        dates = [a.date_created for a in view.activities[:-1]]
        assert dates == sorted(dates, reverse=True)
    ids = {a.id for view in result.groups for a in view.activities if a.id}
    assert len(ids) == sum(len(v.activities) - 1 for v in result.groups)  # no activity shared


def test_each_listed_group_equals_its_get_group_reply(database: str) -> None:
    w = _busy_world()
    _, result = _count(w, size=4, activities=True)
    for view in result.groups:
        single = update.get_group(caller=caller(w["user"].id), organization_id=w["org"].id, group_id=view.id)
        assert view == single
