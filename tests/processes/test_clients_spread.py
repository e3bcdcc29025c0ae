"""The shipped clients open several connections, and those connections reach different workers."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from tests.processes.conftest import SECRET
from tests.processes.support import connections_per_worker
from tests.processes.test_metrics import CALLS_NAME, scrape
from tests.security.support import ROOT, ServerProcess, start_server

POOL = 16  # all of them on one of two workers: 1 in 2**15
NODE_DIR = ROOT / "clients" / "node"


def example_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_client", ROOT / "examples" / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_the_python_example_pool_is_one_connection_per_channel_spread_over_workers(two: ServerProcess) -> None:
    with example_client().ChannelPool(two.target, size=POOL) as pool:
        for _ in range(POOL):
            with pytest.raises(grpc.RpcError) as info:  # an empty database: NOT_FOUND, after auth
                pool.stub().GetGroup(pb.GetGroupRequest(organization_id=1, group_id=1),
                                     metadata=(("authorization", f"Bearer {SECRET}"),), timeout=30)  # fmt: skip
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
        spread = connections_per_worker(two)
    assert sum(spread.values()) == POOL, spread
    assert all(spread.values()), f"every connection went to one worker: {spread}"


def calls_per_worker(text: str, method: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples if family.name == CALLS_NAME else ():
            if s.name.endswith("_total") and s.labels.get("grpc_method") == method:
                out[s.labels["worker"]] = out.get(s.labels["worker"], 0) + s.value
    return out


@pytest.mark.slow
def test_the_node_client_spreads_its_calls_over_workers(sqlite_url: str, tokens: Path) -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("node and clients/node/node_modules needed (make test-node installs them)")
    server = start_server(sqlite_url, tokens, "--processes", "2", "--metrics-port", "0")
    try:
        done = subprocess.run(["node", "client.js", "spread", server.target, str(POOL)], cwd=NODE_DIR,
                              env={**os.environ, "ISSUES_TOKEN": SECRET},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["connections"] == POOL
        per_worker = calls_per_worker(scrape(server), "GetGroup")
    finally:
        server.stop()
    assert sum(per_worker.values()) == POOL
    assert set(per_worker) == {"0", "1"}, f"every call went to one worker: {per_worker}"
