"""The Node.js client (clients/node) against a freshly started demo server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.demo_server import ROOT, demo_server

NODE_DIR = ROOT / "clients" / "node"


@pytest.mark.slow
def test_node_client_reads_updates_and_decodes_error_details(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the Node.js client check needs them")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm ci failed (no registry access?): {installed.stderr[-500:]}")
    with demo_server(tmp_path) as server:
        done = subprocess.run(
            ["node", "client.js", server.address],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
        log = server.log.read_text()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["retryPolicy"] == {"attempts": 2}  # service_config.json retried one UNAVAILABLE
    assert report["getGroup"] == {"group": "API-1", "status": "GROUP_STATUS_UNRESOLVED"}
    assert report["updateGroup"]["is_bookmarked"] is True
    assert report["bulkUpdateGroups"]["matched"] == ["1", "2"]
    assert report["error"]["violation"] == {
        "field": "patch.status_details.in_release",
        "description": "Unable to find a release with the given version.",
    }
    assert '"request_id":"node-error-1"' in log  # the client's request id reached the server log
