"""A typed Python client of issues.v1.IssueService: deadlines, retries, request ids, error details.

Run against the demo (`make run` in another terminal):

    .venv/bin/python examples/client.py --address 127.0.0.1:50051 --token dev-token

What it shows:
- every call has a deadline (`timeout=`): a stuck server costs the caller seconds, not forever;
- retries only for codes that mean "try again" (UNAVAILABLE as is; ABORTED after re-reading),
  with exponential backoff and jitter, and the SAME `x-request-id` on every attempt, so the
  server's JSON log shows one request id for the whole story;
- the request id the server echoes in the trailers (`x-request-id`);
- reading the rich error model: `grpc_status.rpc_status.from_call` gives the google.rpc.Status
  whose details hold an ErrorInfo (reason) and a BadRequest (field violations with Sentry's
  messages);
- several connections (`ChannelPool`): the server runs one worker process per CPU sharing the
  port, and the kernel balances CONNECTIONS, not calls; one channel would keep every call on
  one worker. Each channel of the pool gets its own subchannel pool, hence its own connection.

It type-checks against the generated stubs: `MYPYPATH=generated mypy --strict examples/client.py`
(`make lint-examples`).
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import group_pb2, issue_service_pb2_grpc
from issues.v1 import issue_service_pb2 as pb

T = TypeVar("T")
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CallOptions:
    token: str
    acting_user_id: int | None = None
    timeout: float = 5.0  # seconds, per attempt
    attempts: int = 3


class ChannelPool:
    """`size` channels with a connection each; stub() hands them out round-robin.

    Without `grpc.use_local_subchannel_pool`, channels with equal arguments share one global
    subchannel, that is one TCP connection, and the pool would spread nothing.
    """

    def __init__(self, target: str, *, size: int = 4) -> None:
        options = [("grpc.use_local_subchannel_pool", 1)]
        self.channels = [grpc.insecure_channel(target, options=options) for _ in range(size)]
        self._stubs = [issue_service_pb2_grpc.IssueServiceStub(c) for c in self.channels]
        self._turn = itertools.count()

    def stub(self) -> issue_service_pb2_grpc.IssueServiceStub:
        return self._stubs[next(self._turn) % len(self._stubs)]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> ChannelPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ErrorReport:
    code: str
    message: str
    reason: str
    violations: list[tuple[str, str]]
    request_id: str


def _metadata(options: CallOptions, request_id: str) -> Metadata:
    pairs = [("authorization", f"Bearer {options.token}"), ("x-request-id", request_id)]
    if options.acting_user_id is not None:
        pairs.append(("x-acting-user-id", str(options.acting_user_id)))
    return tuple(pairs)


def echoed_request_id(call: grpc.Call) -> str:
    """The request id from the trailers: ours, or the one the server generated."""
    for key, value in call.trailing_metadata() or ():
        if key == "x-request-id":
            return str(value)
    return ""


def error_report(error: grpc.RpcError) -> ErrorReport:
    """Decode the google.rpc.Status of a failed call into what a caller acts on."""
    assert isinstance(error, grpc.Call)  # every RpcError of a unary call is also a Call
    status = rpc_status.from_call(error)
    reason, violations = "", []
    for detail in status.details if status is not None else []:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            violations = [(v.field, v.description) for v in bad.field_violations]
    return ErrorReport(
        error.code().name, error.details() or "", reason, violations, echoed_request_id(error)
    )


def with_retries(
    attempt: Callable[[Metadata], T], options: CallOptions, *, request_id: str | None = None
) -> T:
    """Call attempt(metadata) until it succeeds or fails with a code not worth retrying."""
    request_id = request_id or uuid.uuid4().hex  # one id for every attempt of this call
    for number in range(1, options.attempts + 1):
        try:
            return attempt(_metadata(options, request_id))
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            if error.code() not in RETRYABLE or number == options.attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**number) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


def get_group(
    stub: issue_service_pb2_grpc.IssueServiceStub, options: CallOptions, *, org: int, group: int
) -> pb.GetGroupResponse:
    request = pb.GetGroupRequest(organization_id=org, group_id=group)
    return with_retries(
        lambda md: stub.GetGroup(request, metadata=md, timeout=options.timeout), options
    )


def resolve_in_release(
    stub: issue_service_pb2_grpc.IssueServiceStub, options: CallOptions, *, group: int, version: str
) -> pb.UpdateGroupResponse:
    """Resolve with an etag: ABORTED means someone changed the issue; re-read, then retry."""

    def attempt(md: Metadata) -> pb.UpdateGroupResponse:
        etag = stub.GetGroup(
            pb.GetGroupRequest(organization_id=1, group_id=group),
            metadata=md,
            timeout=options.timeout,
        ).group.etag
        patch = pb.GroupPatch(
            status=pb.STATUS_UPDATE_RESOLVED,
            status_details=pb.StatusDetailsUpdate(in_release=version),
        )
        request = pb.UpdateGroupRequest(organization_id=1, group_id=group, patch=patch, etag=etag)
        reply: pb.UpdateGroupResponse = stub.UpdateGroup(
            request, metadata=md, timeout=options.timeout
        )
        return reply

    return with_retries(attempt, options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--token", default="dev-token")
    parser.add_argument("--connections", type=int, default=4, help="channels, each its own connection")
    args = parser.parse_args(argv)
    options = CallOptions(token=args.token, acting_user_id=1)
    with ChannelPool(args.address, size=args.connections) as pool:
        reply, call = pool.stub().GetGroup.with_call(
            pb.GetGroupRequest(organization_id=1, group_id=1),
            metadata=_metadata(options, "example-read-1"),
            timeout=options.timeout,
        )
        status = group_pb2.GroupStatus.Name(reply.group.status)
        print(f"{reply.group.short_id}: {reply.group.title} [{status}]")
        print(f"  request id echoed by the server: {echoed_request_id(call)}")
        print(
            "group 2 is",
            group_pb2.GroupStatus.Name(get_group(pool.stub(), options, org=1, group=2).group.status),
        )
        try:
            resolve_in_release(pool.stub(), options, group=2, version="no-such-version")
        except grpc.RpcError as error:
            report = error_report(error)
            print(f"refused: {report.code} reason={report.reason} request id={report.request_id}")
            for field, description in report.violations:
                print(f"  {field}: {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
