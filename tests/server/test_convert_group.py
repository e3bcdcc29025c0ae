"""The reply's group is written in place, setting only what differs from proto3's defaults: every
message must still be present where it always was, optional counts present at 0 and absent at
None, and the fields carry the view's values."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from issues.v1 import group_pb2

from server.core.context import ActorView, CommitView, StatusDetailsView, UserView
from server.core.serialize import GroupView
from server.core.sqltext import record
from server.storage.models import Project
from server.transport.convert import group_to_proto

WHEN = dt.datetime(2026, 12, 1, 1, 2, 3, 456789)


def _view(**changes: Any) -> GroupView:
    fields: dict[str, Any] = dict(
        id=7, short_id="P-7", title="t", culprit="", logger="", level="error", status="unresolved",
        status_details=StatusDetailsView(), substatus=None, share_id="", platform="",
        project=record(Project, id=3, name="n", slug="s", platform=None), issue_category="error",
        issue_type="error", num_comments=0, assigned_to=None, is_bookmarked=False, is_subscribed=False,
        subscription_reason="", subscription_disabled=False, has_seen=False, priority=None,
        priority_locked_at=None, count=0, user_count=0, first_seen=WHEN, last_seen=WHEN, resolved_at=None,
        etag="e",
    )  # fmt: skip
    return GroupView(**{**fields, **changes})


def test_messages_are_present_even_at_their_defaults_and_absent_values_stay_absent() -> None:
    msg = group_to_proto(_view())
    assert msg.HasField("status_details") and msg.HasField("subscription_details") and msg.HasField("project")
    assert not msg.HasField("assigned_to") and not msg.HasField("resolved_at")
    assert not msg.HasField("priority_locked_at") and not msg.status_details.HasField("ignore_count")
    assert (msg.first_seen.seconds, msg.first_seen.nanos) == (calendar.timegm(WHEN.timetuple()), 456789000)
    assert (msg.id, msg.short_id, msg.project.platform, msg.is_public) == (7, "P-7", "", False)


def test_optional_counts_are_present_at_zero_and_every_set_value_arrives() -> None:
    user = UserView(id=2, name="Ann", username="ann", email="a@x")
    details = StatusDetailsView(ignore_count=0, ignore_window=5, ignore_until=WHEN, actor=user,
                                in_commit=CommitView(id=4, key="abc", repository="repo"))  # fmt: skip
    msg = group_to_proto(_view(
        status="ignored", status_details=details, substatus=1, share_id="sh", platform="py", num_comments=2,
        assigned_to=ActorView(type="team", id=9, name="t"), is_bookmarked=True, subscription_reason="comment",
        priority=50, resolved_at=WHEN,
    ))  # fmt: skip
    sd = msg.status_details
    assert sd.HasField("ignore_count") and sd.ignore_count == 0 and sd.ignore_window == 5
    assert not sd.HasField("ignore_user_count") and sd.actor.username == "ann" and sd.in_commit.key == "abc"
    assert (msg.status, msg.substatus, msg.is_public, msg.share_id) == (group_pb2.GROUP_STATUS_IGNORED, 1, True, "sh")
    assert (msg.assigned_to.type, msg.assigned_to.id) == (group_pb2.ACTOR_TYPE_TEAM, 9)
    assert (msg.num_comments, msg.is_bookmarked, msg.priority) == (2, True, 50)
    assert msg.subscription_details.reason == "comment" and msg.HasField("resolved_at")
