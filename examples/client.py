"""A typed Python client of issues.v1.IssueService: deadlines, retries, request ids, error details.

Run against the demo (`make run` in another terminal):

    .venv/bin/python examples/client.py --address 127.0.0.1:50051 --token dev-token

What it shows:
- retries come from the channel, not from hand-written loops: clients/service_config.json (the
  gRPC service config shipped with the service) gives every method a deadline and retries
  UNAVAILABLE on reads, UNAVAILABLE and ABORTED on writes, with backoff and throttling; a retried
  call resends the SAME metadata, so the server's JSON log shows one `x-request-id` per call;
- writes carry a `request_id`, which is what makes retrying them safe: the server applies a
  request id once and replays the stored reply to a retry;
- an etag mismatch (ABORTED, reason ETAG_MISMATCH) is not retried by the channel (the server
  pushes back): the caller re-reads and tries again with the fresh etag;
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
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import group_pb2, issue_service_pb2_grpc
from issues.v1 import issue_service_pb2 as pb

SERVICE_CONFIG = Path(__file__).resolve().parent.parent / "clients" / "service_config.json"
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CallOptions:
    token: str
    acting_user_id: int | None = None
    attempts: int = 3  # re-reads after an etag mismatch (transport retries are the channel's)


class ChannelPool:
    """`size` channels with a connection each; stub() hands them out round-robin.

    Without `grpc.use_local_subchannel_pool`, channels with equal arguments share one global
    subchannel, that is one TCP connection, and the pool would spread nothing.
    """

    def __init__(self, target: str, *, size: int = 4) -> None:
        options = [*channel_options(), ("grpc.use_local_subchannel_pool", 1)]
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


def channel_options(config: Path = SERVICE_CONFIG) -> list[tuple[str, str | int]]:
    """Channel options that install the service's retry policy and deadlines."""
    return [("grpc.service_config", config.read_text()), ("grpc.enable_retries", 1)]


def get_group(
    stub: issue_service_pb2_grpc.IssueServiceStub, options: CallOptions, *, org: int, group: int
) -> pb.GetGroupResponse:
    request = pb.GetGroupRequest(organization_id=org, group_id=group)
    reply: pb.GetGroupResponse = stub.GetGroup(request, metadata=_metadata(options, uuid.uuid4().hex))
    return reply


def resolve_in_release(
    stub: issue_service_pb2_grpc.IssueServiceStub, options: CallOptions, *, group: int, version: str
) -> pb.UpdateGroupResponse:
    """Resolve with an etag; on ETAG_MISMATCH (someone changed the issue) re-read and try again."""
    request_id = uuid.uuid4().hex  # one id for the whole story, in the log and for replay
    for attempt in range(1, options.attempts + 1):
        etag = get_group(stub, options, org=1, group=group).group.etag
        patch = pb.GroupPatch(
            status=pb.STATUS_UPDATE_RESOLVED,
            status_details=pb.StatusDetailsUpdate(in_release=version),
        )
        request = pb.UpdateGroupRequest(
            organization_id=1, group_id=group, patch=patch, etag=etag, request_id=f"{request_id}-{attempt}"
        )
        try:
            reply: pb.UpdateGroupResponse = stub.UpdateGroup(request, metadata=_metadata(options, request_id))
            return reply
        except grpc.RpcError as error:
            if error_report(error).reason != "ETAG_MISMATCH" or attempt == options.attempts:
                raise
    raise AssertionError("unreachable")


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
