"""IssueEvent and WatchIssueEvents messages <-> the event stream's records (one function each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from issues.v1 import events_pb2 as pb

from server.core.errors import InvalidArgument
from server.events.records import EventRecord
from server.events.watch import Heartbeat, WatchRequest
from server.transport.convert import timestamp_to_proto

KINDS: dict[str, int] = {
    "issue.resolved": pb.EVENT_KIND_ISSUE_RESOLVED,
    "issue.unresolved": pb.EVENT_KIND_ISSUE_UNRESOLVED,
    "issue.unignored": pb.EVENT_KIND_ISSUE_UNIGNORED,
    "issue.ignored": pb.EVENT_KIND_ISSUE_IGNORED,
    "issue.archived": pb.EVENT_KIND_ISSUE_ARCHIVED,
    "issue.assigned": pb.EVENT_KIND_ISSUE_ASSIGNED,
    "issue.unassigned": pb.EVENT_KIND_ISSUE_UNASSIGNED,
    "issue.merged": pb.EVENT_KIND_ISSUE_MERGED,
    "issue.deleted": pb.EVENT_KIND_ISSUE_DELETED,
    "issue.priority_updated": pb.EVENT_KIND_ISSUE_PRIORITY_UPDATED,
    "issue.mark_reviewed": pb.EVENT_KIND_ISSUE_MARK_REVIEWED,
    "issue.shared": pb.EVENT_KIND_ISSUE_SHARED,
    "issue.unshared": pb.EVENT_KIND_ISSUE_UNSHARED,
    "activity.notification": pb.EVENT_KIND_ACTIVITY_NOTIFICATION,
}
KIND_NAMES = {number: name for name, number in KINDS.items()}


MAX_EVENTS_PER_MESSAGE = 500


def kind_subject(kind: str) -> str:
    """The kind as a NATS subject token: `issue_resolved`, `activity_notification`."""
    return kind.replace(".", "_")


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _ignored(p: dict[str, Any]) -> pb.IgnoredPayload:
    until = p.get("ignoreUntil")
    payload = pb.IgnoredPayload(
        substatus=_int(p.get("substatus")),
        ignore_count=_int(p.get("ignoreCount")),
        ignore_window=_int(p.get("ignoreWindow")),
        ignore_user_count=_int(p.get("ignoreUserCount")),
        ignore_user_window=_int(p.get("ignoreUserWindow")),
    )
    if until:
        payload.ignore_until.FromJsonString(until)
    return payload


def _assigned(p: dict[str, Any]) -> pb.AssignedPayload:
    a = p.get("assignee") or {}
    return pb.AssignedPayload(
        assignee_type=a.get("assigneeType") or "", assignee_id=_int(a.get("assignee")),
        assignee_email=a.get("assigneeEmail") or "",
    )  # fmt: skip


PAYLOADS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "issue.resolved": ("resolved", lambda p: pb.ResolvedPayload(resolution_type=p.get("resolution_type") or "")),
    "issue.unignored": ("unignored", lambda p: pb.UnignoredPayload(transition=p.get("transition") or "")),
    "issue.ignored": ("ignored", _ignored),
    "issue.archived": ("archived", lambda p: pb.ArchivedPayload(until_escalating=bool(p.get("until_escalating")))),
    "issue.assigned": ("assigned", _assigned),
    "issue.merged": ("merged", lambda p: pb.MergedPayload(child_group_ids=[int(c) for c in p.get("children") or []])),
    "issue.deleted": ("deleted", lambda p: pb.DeletedPayload(delete_type=p.get("delete_type") or "")),
    "issue.priority_updated": (
        "priority_updated",
        lambda p: pb.PriorityUpdatedPayload(new_priority=p.get("new") or "", previous_priority=p.get("previous") or ""),
    ),
    "activity.notification": (
        "activity_notification",
        lambda p: pb.ActivityNotificationPayload(activity_type=_int(p.get("activity_type"))),
    ),
}


def issue_event_to_proto(record: EventRecord) -> pb.IssueEvent:
    event = pb.IssueEvent(
        event_id=record.seq,
        occurred_at=timestamp_to_proto(record.occurred_at),
        organization_id=record.organization_id,
        project_id=record.project_id,
        group_id=record.group_id,
        actor=pb.EventActor(user_id=record.actor_id or 0, system=record.actor_id is None),
        request_id=record.request_id or "",
        kind=KINDS.get(record.kind, pb.EVENT_KIND_UNSPECIFIED),  # type: ignore[arg-type]
    )
    if record.kind in PAYLOADS:
        name, build = PAYLOADS[record.kind]
        getattr(event, name).CopyFrom(build(record.payload))
    return event


def watch_request_from_proto(request: pb.WatchIssueEventsRequest) -> WatchRequest:
    # Worded and placed as the edge limits word an unknown enum number (kinds[i]).
    unknown = [(i, k) for i, k in enumerate(request.kinds) if k not in KIND_NAMES]
    if unknown:
        index, kind = unknown[0]
        raise InvalidArgument.field(f"kinds[{index}]", f'"{kind}" is not a valid choice.')
    if request.after_event_id < 0:
        raise InvalidArgument.field("after_event_id", "Must be 0 or a previous event id")
    if not 0 <= request.max_events_per_message <= MAX_EVENTS_PER_MESSAGE:
        raise InvalidArgument.field("max_events_per_message", f"Must be between 0 and {MAX_EVENTS_PER_MESSAGE}")
    return WatchRequest(
        organization_id=request.organization_id,
        project_ids=frozenset(request.project_ids),
        group_ids=frozenset(request.group_ids),
        kinds=frozenset(KIND_NAMES[k] for k in request.kinds),
        after_event_id=request.after_event_id,
        batch=max(1, request.max_events_per_message),
    )


def watch_message_to_proto(item: list[EventRecord] | Heartbeat, *, batched: bool) -> pb.WatchIssueEventsResponse:
    """One stream message: a heartbeat, one `event`, or (the caller opted in) an `events` batch."""
    if isinstance(item, Heartbeat):
        beat = pb.Heartbeat(head_event_id=item.head_event_id, sent_at=timestamp_to_proto(item.sent_at))
        return pb.WatchIssueEventsResponse(heartbeat=beat)
    if batched:
        return pb.WatchIssueEventsResponse(events=pb.EventBatch(events=[issue_event_to_proto(r) for r in item]))
    (record,) = item  # without the opt-in the core hands out one event at a time
    return pb.WatchIssueEventsResponse(event=issue_event_to_proto(record))
