#!/usr/bin/env node
// Polyglot proof for issues.v1.IssueService: loads ../../protos as they are (no generated code),
// calls GetGroup, UpdateGroup and BulkUpdateGroups with a bearer token, and decodes an error's
// google.rpc.Status / BadRequest from the grpc-status-details-bin trailer. The channel runs the
// service's retry policy and deadlines from ../service_config.json; checkRetryPolicy proves it on
// a throwaway local server that answers UNAVAILABLE once.
//
// Usage: node client.js [ADDRESS] (default 127.0.0.1:50051; env ISSUES_TOKEN, default dev-token).
// Expects the demo data (server/demo/demo.json). Exits 0 when every check passes, 1 otherwise.
//        node client.js spread ADDRESS N: one GetGroup on each of N connections (any status),
//        printing {"connections": N, "codes": {...}}; the server shows which workers took them.
//
// Calls go round-robin over a small pool of clients, each with its own connection: the server
// runs one worker process per CPU sharing the port, and the kernel balances connections, not
// calls. 'grpc.use_local_subchannel_pool' gives each client its own subchannel; without it,
// clients of one target share a single connection.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const SPREAD = process.argv[2] === 'spread';
const ADDRESS = process.argv[SPREAD ? 3 : 2] || '127.0.0.1:50051';
const CONNECTIONS = Number(SPREAD ? process.argv[4] : process.env.ISSUES_CONNECTIONS || 4);
const TOKEN = process.env.ISSUES_TOKEN || 'dev-token';
const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const RPC_PROTOS = path.resolve(__dirname, 'protos');
const DEADLINE_MS = 10_000;
const SERVICE_CONFIG = fs.readFileSync(path.resolve(__dirname, '..', 'service_config.json'), 'utf8');
// Retries (grpc-js >= 1.10) follow the service config: UNAVAILABLE on reads; UNAVAILABLE and
// ABORTED on writes, which is safe because every write below carries a request_id.
const CHANNEL_OPTIONS = { 'grpc.service_config': SERVICE_CONFIG, 'grpc.enable_retries': 1 };

function loadService() {
  const definition = protoLoader.loadSync(path.join(PROTOS, 'issues/v1/issue_service.proto'), {
    includeDirs: [PROTOS],
    keepCase: true, // field names exactly as in the .proto (snake_case)
    longs: String, // int64 ids as strings: no precision loss
    enums: String, // enum values by name
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).issues.v1.IssueService;
}

function loadStatusTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? target : path.join(RPC_PROTOS, target);
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return {
    Status: root.lookupType('google.rpc.Status'),
    BadRequest: root.lookupType('google.rpc.BadRequest'),
    ErrorInfo: root.lookupType('google.rpc.ErrorInfo'),
  };
}

function metadata(requestId) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  md.set('x-acting-user-id', '1');
  md.set('x-request-id', requestId);
  return md;
}

// One unary call as a promise of {reply, trailers} or a rejected ServiceError (with .metadata).
function call(client, method, request, requestId) {
  return new Promise((resolve, reject) => {
    let result = null;
    const options = { deadline: Date.now() + DEADLINE_MS };
    const c = client[method](request, metadata(requestId), options, (err, reply) => {
      if (err) reject(err); // err.metadata holds the trailers
      else result = reply;
    });
    // The trailers arrive with the status, after the reply: settle on the later of the two.
    c.on('status', (status) => {
      if (status.code === grpc.status.OK) resolve({ reply: result, trailers: status.metadata });
    });
  });
}

// The rich error model: google.rpc.Status in the binary trailer, its details as Any.
function decodeDetails(err, types) {
  const raw = err.metadata.get('grpc-status-details-bin')[0];
  assert.ok(raw, 'error carries grpc-status-details-bin');
  const status = types.Status.decode(raw);
  const out = { code: status.code, message: status.message, badRequest: null, errorInfo: null };
  for (const any of status.details) {
    if (any.type_url === 'type.googleapis.com/google.rpc.BadRequest') {
      out.badRequest = types.BadRequest.toObject(types.BadRequest.decode(any.value));
    } else if (any.type_url === 'type.googleapis.com/google.rpc.ErrorInfo') {
      out.errorInfo = types.ErrorInfo.toObject(types.ErrorInfo.decode(any.value));
    }
  }
  return out;
}

async function checkGetGroup(client) {
  const { reply, trailers } = await call(client, 'GetGroup', { organization_id: 1, group_id: 1 }, 'node-get-1');
  assert.equal(reply.group.id, '1');
  assert.equal(reply.group.title, 'ZeroDivisionError: division by zero');
  assert.equal(reply.group.project.slug, 'api');
  assert.deepEqual(trailers.get('x-request-id'), ['node-get-1'], 'request id echoed in trailers');
  return { group: reply.group.short_id, status: reply.group.status };
}

async function checkUpdateGroup(client) {
  const request = {
    organization_id: 1,
    group_id: 5,
    patch: { is_bookmarked: true, priority: 'PRIORITY_HIGH' },
    request_id: 'node-update-1', // makes a retried write safe: applied once, replayed after
  };
  const { reply } = await call(client, 'UpdateGroup', request, 'node-update-1');
  assert.equal(reply.group.is_bookmarked, true);
  assert.equal(reply.group.priority, 'PRIORITY_HIGH');
  return { group: reply.group.short_id, is_bookmarked: reply.group.is_bookmarked, priority: reply.group.priority };
}

async function checkBulk(client) {
  const request = {
    organization_id: 1,
    group_ids: [1, 2],
    patch: { status: 'STATUS_UPDATE_RESOLVED' },
    request_id: 'node-bulk-1',
  };
  const { reply } = await call(client, 'BulkUpdateGroups', request, 'node-bulk-1');
  assert.deepEqual(reply.matched_group_ids, ['1', '2']);
  assert.equal(reply.applied.status, 'STATUS_UPDATE_RESOLVED');
  assert.equal(reply.outcomes.length, 2);
  return { matched: reply.matched_group_ids, outcomes: reply.outcomes.map((o) => o.outcome) };
}

async function checkError(client, types) {
  const request = {
    organization_id: 1,
    group_id: 6,
    patch: { status: 'STATUS_UPDATE_RESOLVED', status_details: { in_release: 'no-such-version' } },
  };
  try {
    await call(client, 'UpdateGroup', request, 'node-error-1');
  } catch (err) {
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    const details = decodeDetails(err, types);
    assert.equal(details.code, grpc.status.INVALID_ARGUMENT);
    const violation = details.badRequest.field_violations[0];
    assert.equal(violation.field, 'patch.status_details.in_release');
    assert.equal(violation.description, 'Unable to find a release with the given version.');
    assert.equal(details.errorInfo.domain, 'issues.v1');
    assert.deepEqual(err.metadata.get('x-request-id'), ['node-error-1']);
    return { code: 'INVALID_ARGUMENT', violation, reason: details.errorInfo.reason };
  }
  throw new Error('UpdateGroup with an unknown release should fail');
}

// A local server whose GetGroup answers UNAVAILABLE once, then succeeds: the channel's retry
// policy (not this code) must make the single call below succeed.
async function checkRetryPolicy(IssueService) {
  let attempts = 0;
  const server = new grpc.Server();
  server.addService(IssueService.service, {
    GetGroup: (_call, callback) => {
      attempts += 1;
      if (attempts === 1) callback({ code: grpc.status.UNAVAILABLE, details: 'database busy; retry later' });
      else callback(null, { group: { id: '1', short_id: 'RETRY-1' } });
    },
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const client = new IssueService(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    const { reply } = await call(client, 'GetGroup', { organization_id: 1, group_id: 1 }, 'node-retry-1');
    assert.equal(reply.group.short_id, 'RETRY-1');
    assert.equal(attempts, 2, 'one UNAVAILABLE, then the retry');
    return { attempts };
  } finally {
    client.close();
    server.forceShutdown();
  }
}

// A pool of clients, one connection each, handed out round-robin by next().
function connectionPool(IssueService, size) {
  const clients = Array.from(
    { length: size },
    () => new IssueService(ADDRESS, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }),
  );
  let turn = 0;
  return {
    clients,
    next: () => clients[turn++ % clients.length],
    close: () => clients.forEach((c) => c.close()),
  };
}

async function spread(pool) {
  const codes = {};
  for (const client of pool.clients) {
    const code = await call(client, 'GetGroup', { organization_id: 1, group_id: 1 }, 'node-spread').then(
      () => 'OK',
      (err) => grpc.status[err.code],
    );
    codes[code] = (codes[code] || 0) + 1;
  }
  return { connections: pool.clients.length, codes };
}

async function checks(pool, types, IssueService) {
  return {
    ok: true,
    retryPolicy: await checkRetryPolicy(IssueService),
    getGroup: await checkGetGroup(pool.next()),
    updateGroup: await checkUpdateGroup(pool.next()),
    bulkUpdateGroups: await checkBulk(pool.next()),
    error: await checkError(pool.next(), types),
  };
}

async function main() {
  const IssueService = loadService();
  const pool = connectionPool(IssueService, CONNECTIONS);
  try {
    const results = SPREAD ? await spread(pool) : await checks(pool, loadStatusTypes(), IssueService);
    console.log(JSON.stringify(results, null, 2));
  } finally {
    pool.close();
  }
}

main().catch((err) => {
  console.error(JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err) }));
  process.exit(1);
});
