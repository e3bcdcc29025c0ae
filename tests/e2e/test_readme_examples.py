"""The README's walkthrough ("Calling it", then "Debugging") runs as written against fresh demo data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.demo_server import ROOT, VENV_BIN, DemoServer, demo_server

SECTIONS = ("## Calling it", "## Debugging with grpcurl and buf curl")  # run in this order
README_ADDRESS = "127.0.0.1:50051"
# What the walkthrough runs: the clients, and `make seed` to put the demo data back.
RUNNABLE = ("grpcurl ", "buf ", ".venv/bin/grpcurl ", "make seed")


@dataclass
class Example:
    command: str
    expect: list[str] = field(default_factory=list)
    exit_code: int = 0


def _section(text: str, heading: str) -> str:
    start = text.index(heading) + len(heading)
    following = re.search(r"^## ", text[start:], flags=re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def _parse_block(block: str) -> list[Example]:
    examples: list[Example] = []
    pending = ""
    for line in block.splitlines():
        if line.startswith("# expect: "):
            examples[-1].expect.append(line.removeprefix("# expect: "))
        elif line.startswith("# exit: "):
            examples[-1].exit_code = int(line.removeprefix("# exit: "))
        elif line.endswith("\\"):
            pending += line[:-1] + " "
        elif line.strip():
            examples.append(Example(command=pending + line))
            pending = ""
    return examples


def readme_examples() -> list[Example]:
    text = (ROOT / "README.md").read_text()
    sections = [_section(text, heading) for heading in SECTIONS]
    blocks = [b for section in sections for b in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)]
    examples = [e for block in blocks for e in _parse_block(block)]
    return [e for e in examples if e.command.startswith(RUNNABLE)]


def test_readme_has_examples_of_every_kind() -> None:
    text = "\n".join(e.command for e in readme_examples())
    for needle in (
        " list",
        "describe",
        "GetGroup",
        '"STATUS_UPDATE_RESOLVED"}',
        "in_release",
        "ignore_count",
        "assigned_to",
        "is_bookmarked",
        "BulkUpdateGroups",
        "buf curl",
        "make seed",
    ):
        assert needle in text, needle
    assert all(e.expect for e in readme_examples()), "every example names what it must print"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("readme")) as running:
        yield running


@pytest.mark.slow
def test_readme_examples_run_as_written(server: DemoServer) -> None:
    if not (shutil.which("grpcurl", path=str(VENV_BIN)) and shutil.which("buf", path=str(VENV_BIN))):
        pytest.skip("grpcurl or buf missing from the virtualenv: run `make venv`")
    # `make seed` reseeds the test's demo database (the Makefile's DB), not the checkout's issues.db.
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DB": server.database_url}
    for example in readme_examples():  # in order: later examples rely on earlier changes
        command = example.command.replace(README_ADDRESS, server.address)
        done = subprocess.run(
            ["bash", "-c", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=Path(ROOT),
        )
        output = done.stdout + done.stderr
        assert done.returncode == example.exit_code, f"{example.command}\n{output}"
        for snippet in example.expect:
            assert snippet in output, f"{example.command}\nmissing {snippet!r} in:\n{output}"
