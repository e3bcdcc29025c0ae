#!/bin/sh
# Install the pinned packages (npm ci, from package-lock.json) when missing, then run the checks
# against ADDRESS (default 127.0.0.1:50051, e.g. `make run`). Token: $ISSUES_TOKEN or dev-token.
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1; then
  echo "node is not installed: skipping the Node.js client" >&2
  exit 77
fi
[ -d node_modules/@grpc/grpc-js ] || npm ci --no-audit --no-fund --silent
exec node client.js "${1:-127.0.0.1:50051}"
