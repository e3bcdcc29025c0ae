// `make check-clients`: the stubs, compiled by tsc (module nodenext) into build/ts-out, load in
// plain Node as ES modules and round-trip a request through the wire format. A type check alone
// passed while Node could not import them (their imports lacked the `.js` extension).
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";

const out = process.argv[2];
const { UpdateGroupRequestSchema, IssueService } = await import(`${out}/issues/v1/issue_service_pb.js`);
const request = create(UpdateGroupRequestSchema, {
  organizationId: 1n,
  groupId: 9007199254740993n,
  patch: { statusDetails: { resolution: { case: "inRelease", value: "api@1.2.0" } } },
});
const back = fromBinary(UpdateGroupRequestSchema, toBinary(UpdateGroupRequestSchema, request));
assert.equal(back.groupId, 9007199254740993n);
assert.deepEqual(back.patch.statusDetails.resolution, { case: "inRelease", value: "api@1.2.0" });
assert.equal(IssueService.method.updateGroup.name, "UpdateGroup");
console.log("gen/ts: the compiled stubs load in Node and round-trip an UpdateGroupRequest");
