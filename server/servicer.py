"""IssueService RPCs: convert the request, make one core call, convert the result."""

from __future__ import annotations

import grpc

from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc
from server import convert
from server.auth import caller_from
from server.core import update
from server.core.errors import Unimplemented
from server.errors import translated


def _refuse_request_id(request_id: str) -> None:
    if request_id:
        raise Unimplemented("idempotency keys are not implemented yet", reason="FIELD_UNIMPLEMENTED",
                            field="request_id")  # fmt: skip


class IssueServicer(issue_service_pb2_grpc.IssueServiceServicer):
    @translated()
    def GetGroup(self, request: pb.GetGroupRequest, context: grpc.ServicerContext) -> pb.GetGroupResponse:
        view = update.get_group(
            caller=caller_from(context), organization_id=request.organization_id, group_id=request.group_id
        )
        return pb.GetGroupResponse(group=convert.group_to_proto(view))

    @translated()
    def UpdateGroup(self, request: pb.UpdateGroupRequest, context: grpc.ServicerContext) -> pb.UpdateGroupResponse:
        command = convert.patch_from_proto(request.patch)
        _refuse_request_id(request.request_id)
        view = update.update_group(
            caller=caller_from(context),
            organization_id=request.organization_id,
            group_id=request.group_id,
            command=command,
            etag=request.etag,
        )
        return pb.UpdateGroupResponse(group=convert.group_to_proto(view))

    @translated()
    def BulkUpdateGroups(
        self, request: pb.BulkUpdateGroupsRequest, context: grpc.ServicerContext
    ) -> pb.BulkUpdateGroupsResponse:
        command = convert.patch_from_proto(request.patch)
        _refuse_request_id(request.request_id)
        result = update.bulk_update(
            caller=caller_from(context),
            selection_spec=convert.selection_from_proto(request),
            command=command,
            validate_only=request.validate_only,
        )
        return convert.bulk_result_to_proto(result)
