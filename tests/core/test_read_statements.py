"""The reply reads a group with a fixed, small number of statements, whatever hangs off it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.core import update
from server.core.commands import Assignee, IgnoreConditions, StatusDetails
from tests import factories as f
from tests.core.helpers import caller, single
from tests.statements import recorded

pytestmark = pytest.mark.db


def _count(call: Callable[[], Any]) -> tuple[int, Any]:
    with recorded() as seen:
        result = call()
    return len(seen), result


def _busy_group(w: dict[str, Any]) -> int:
    """A group with a snooze, a share, an assignee, a bookmark, a subscription and activities."""
    g = f.group(w["project"])
    uid = w["user"].id
    single(w["org"].id, g.id, user_id=uid, is_bookmarked=True, is_public=True, has_seen=True)
    single(w["org"].id, g.id, user_id=uid, assigned_to=Assignee("user_id", uid))
    single(w["org"].id, g.id, user_id=uid, status="ignored",
           top_level_ignore=IgnoreConditions(count=10))  # fmt: skip
    return g.id


def _statements(call: Callable[[], Any]) -> tuple[list[str], Any]:
    with recorded() as seen:
        result = call()
    return seen, result


def test_get_group_is_one_statement_without_a_lock_for_a_group_with_every_related_row(database: str) -> None:
    w = f.world()
    gid = _busy_group(w)
    seen, view = _statements(
        lambda: update.get_group(caller=caller(w["user"].id), organization_id=w["org"].id, group_id=gid)
    )
    # organization, acting user, membership, project access, the group (redirect followed) with
    # its related rows and activities: one statement, so one snapshot, and no row lock
    assert len(seen) == 1
    assert "FOR UPDATE" not in seen[0]
    assert view.status == "ignored" and view.status_details.ignore_count == 10
    assert view.is_bookmarked and view.is_subscribed and view.has_seen and view.share_id
    assert view.assigned_to is not None and view.assigned_to.id == w["user"].id
    assert view.status_details.actor is not None and view.status_details.actor.id == w["user"].id
    assert [a.user.id for a in view.activities if a.user is not None]


def test_get_group_without_an_acting_user_reads_no_per_user_rows(database: str) -> None:
    w = f.world()
    gid = _busy_group(w)
    count, view = _count(lambda: update.get_group(caller=caller(None), organization_id=w["org"].id, group_id=gid))
    assert count == 1
    assert not (view.is_bookmarked or view.is_subscribed or view.has_seen)
    assert view.assigned_to is not None  # not per user


def test_resolved_in_release_reply_reads_release_and_actor_in_the_same_statement(
    database: str,
) -> None:
    w = f.world()
    release = f.release(w["project"], "1.0")
    g = f.group(w["project"])
    single(w["org"].id, g.id, user_id=w["user"].id, status="resolved",
           status_details=StatusDetails(in_release="1.0"))  # fmt: skip
    count, view = _count(
        lambda: update.get_group(caller=caller(w["user"].id), organization_id=w["org"].id, group_id=g.id)
    )
    assert count == 1  # as above: no extra read for release and actor
    assert view.status_details.in_release == release.version
    assert view.status_details.actor is not None and view.status_details.actor.id == w["user"].id
