"""examples/client.py type-checks against the generated stubs and runs against the demo server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.demo_server import ROOT, VENV_BIN, demo_server

EXAMPLE = ROOT / "examples" / "client.py"


def test_example_client_type_checks_with_the_generated_stubs() -> None:
    env = {**os.environ, "MYPYPATH": str(ROOT / "generated")}
    done = subprocess.run(
        [str(VENV_BIN / "mypy"), "--strict", str(EXAMPLE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_example_client_reads_an_issue_and_reports_field_violations(tmp_path: Path) -> None:
    with demo_server(tmp_path) as server:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--address", server.address],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "API-1: ZeroDivisionError: division by zero [GROUP_STATUS_UNRESOLVED]" in out
    assert "request id echoed by the server: example-read-1" in out
    assert "refused: INVALID_ARGUMENT reason=INVALID_ARGUMENT" in out
    assert "patch.status_details.in_release: Unable to find a release with the given version." in out
