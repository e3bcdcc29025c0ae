"""IssueService RPCs: convert the request, make one core call, convert the result."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2
from issues.v1 import events_pb2 as events_pb
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.core import idempotency, listing, update
from server.core.commands import Caller
from server.core.errors import CoreError, InvalidArgument, Unimplemented
from server.core.serialize import GroupView
from server.events import watch
from server.events.feed import EventFeed
from server.telemetry import logs
from server.transport import convert, event_convert
from server.transport.auth import caller_from as authenticated_caller
from server.transport.errors import abort, call_status, log, status_for, translated

T = TypeVar("T")


def caller_from(context: grpc.ServicerContext) -> Caller:
    """The authenticated caller, carrying the call's request id into the outbox events."""
    return authenticated_caller(context).with_request_id(logs.current_request_id())


R = TypeVar("R", bound=Message)
STREAM_REQUEST_ID = (
    "request_id is not accepted by StreamBulkUpdateGroups; resume an interrupted stream with the "
    "next_page_token of its last message."
)


def _key(caller: Caller, request: Any, method: str) -> idempotency.IdempotencyKey | None:
    if not request.request_id:
        return None  # not idempotent: no record, and no hash of the body to compute
    digest = convert.body_hash(request, user_id=caller.user_id)
    return idempotency.key_for(
        token_name=caller.token_name, method=method, request_id=request.request_id, body_hash=digest
    )


def _once(
    key: idempotency.IdempotencyKey | None,
    call: Callable[[], T],
    to_proto: Callable[[T], R],
    reply_type: type[R],
) -> R:
    """Run the core call once per request id; a retry gets the stored reply, byte for byte."""

    def encode(value: T) -> str:
        return base64.b64encode(to_proto(value).SerializeToString()).decode()

    out = idempotency.run(call, key, encode=encode)
    if isinstance(out, idempotency.Replay):
        return reply_type.FromString(base64.b64decode(out.response))
    return to_proto(out)


def translated_stream(
    *, field_prefix: str = "patch."
) -> Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]:
    """translated() for server-streaming methods: errors raised while streaming become statuses.

    field_prefix: where the core's field names sit in the request ("patch." for the update's).
    """
    return functools.partial(_translated_stream, field_prefix=field_prefix)


def _translated_stream(method: Callable[..., Iterator[Any]], *, field_prefix: str) -> Callable[..., Iterator[Any]]:
    @functools.wraps(method)
    def inner(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except CoreError as exc:
            abort(context, call_status(exc, context, field_prefix=field_prefix))
        except Exception:
            if not context.is_active():
                raise  # the client went away; nothing to answer
            log.exception("internal error in %s", method.__name__)
            abort(context, status_for(code_pb2.INTERNAL, "internal error", reason="INTERNAL"))

    return inner


def still_wanted(context: grpc.ServicerContext) -> Callable[[], bool]:
    """Whether the caller still waits for the reply: the call is neither cancelled nor past its
    deadline. grpc marks a call inactive only once its core has handled the deadline, which can
    come tens of milliseconds late (an update with a 1 ms deadline was committed after it); the
    remaining time says so at once."""

    def check() -> bool:
        if not context.is_active():
            return False
        remaining = context.time_remaining()
        return remaining is None or remaining > 0

    return check


G = TypeVar("G", pb.GetGroupResponse, pb.UpdateGroupResponse)


def _group_reply(reply_type: type[G], view: GroupView) -> G:
    reply = reply_type()
    convert.fill_group(reply.group, view)  # in place: a group passed to the constructor is copied
    return reply


class IssueServicer(issue_service_pb2_grpc.IssueServiceServicer):
    def __init__(self, *, feed: EventFeed | None = None, heartbeat: float = 15.0, access_recheck: float = 30.0) -> None:
        self.feed = feed
        self.heartbeat = heartbeat
        self.access_recheck = access_recheck

    @translated()
    def GetGroup(self, request: pb.GetGroupRequest, context: grpc.ServicerContext) -> pb.GetGroupResponse:
        view = update.get_group(
            caller=caller_from(context), organization_id=request.organization_id, group_id=request.group_id
        )
        return _group_reply(pb.GetGroupResponse, view)

    @translated(field_prefix="")
    def ListGroups(self, request: pb.ListGroupsRequest, context: grpc.ServicerContext) -> pb.ListGroupsResponse:
        result = listing.list_groups(caller=caller_from(context), request=convert.list_request_from_proto(request))
        return convert.list_result_to_proto(result)

    @translated()
    def UpdateGroup(self, request: pb.UpdateGroupRequest, context: grpc.ServicerContext) -> pb.UpdateGroupResponse:
        command = convert.patch_from_proto(request.patch)
        caller = caller_from(context)
        return _once(
            _key(caller, request, "UpdateGroup"),
            lambda: update.update_group(
                caller=caller,
                organization_id=request.organization_id,
                group_id=request.group_id,
                command=command,
                etag=request.etag,
                should_continue=still_wanted(context),
                time_left=context.time_remaining,
            ),
            lambda view: _group_reply(pb.UpdateGroupResponse, view),
            pb.UpdateGroupResponse,
        )

    @translated()
    def BulkUpdateGroups(
        self, request: pb.BulkUpdateGroupsRequest, context: grpc.ServicerContext
    ) -> pb.BulkUpdateGroupsResponse:
        command = convert.patch_from_proto(request.patch)
        caller = caller_from(context)
        spec = convert.selection_from_proto(request)
        # A dry run neither stores nor replays: its reply must reflect the database now.
        key = None if request.validate_only else _key(caller, request, "BulkUpdateGroups")
        return _once(
            key,
            lambda: update.bulk_update(
                caller=caller,
                selection_spec=spec,
                command=command,
                validate_only=request.validate_only,
                should_continue=still_wanted(context),
                time_left=context.time_remaining,
            ),
            convert.bulk_result_to_proto,
            pb.BulkUpdateGroupsResponse,
        )

    @translated_stream()
    def StreamBulkUpdateGroups(
        self, request: pb.BulkUpdateGroupsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.BulkUpdateGroupsProgress]:
        command = convert.patch_from_proto(request.patch)
        if request.request_id:
            raise InvalidArgument.field("request_id", STREAM_REQUEST_ID)
        chunks = update.bulk_update_chunks(
            caller=caller_from(context),
            selection_spec=convert.selection_from_proto(request),
            command=command,
            validate_only=request.validate_only,
            should_continue=still_wanted(context),
            time_left=context.time_remaining,
        )
        processed = 0
        for index, result in enumerate(chunks):
            processed += len(result.matched_group_ids)
            yield convert.bulk_progress_to_proto(result, chunk_index=index, processed_count=processed)
            if not context.is_active():
                return  # cancelled or past its deadline: stop before the next chunk starts

    @translated_stream(field_prefix="")
    def WatchIssueEvents(
        self, request: events_pb.WatchIssueEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[events_pb.WatchIssueEventsResponse]:
        if self.feed is None:
            raise Unimplemented("This server runs without the event feed", reason="EVENTS_DISABLED")
        spec = event_convert.watch_request_from_proto(request)
        caller = caller_from(context)
        where = watch.authorize(caller=caller, request=spec)
        recheck = watch.Recheck(access=lambda: watch.access_filter(caller=caller, request=spec),
                                every=self.access_recheck)  # fmt: skip
        stream = watch.watch(
            feed=self.feed, where=where, after=spec.after_event_id, heartbeat=self.heartbeat,
            should_continue=context.is_active, batch=spec.batch, recheck=recheck,
        )  # fmt: skip
        batched = spec.batch > 1
        for item in stream:
            yield event_convert.watch_message_to_proto(item, batched=batched)
