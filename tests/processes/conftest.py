"""Fixtures of the process tests: a migrated SQLite file, a token file, a two-worker server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.support import ServerProcess, migrate, start_server, write_tokens

SECRET = "secret"


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'procs.db'}"
    migrate(url)
    return url


@pytest.fixture()
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    write_tokens(path, {"t": (SECRET, ["event:read"])})
    return path


@pytest.fixture()
def two(sqlite_url: str, tokens: Path) -> Iterator[ServerProcess]:
    server = start_server(sqlite_url, tokens, "--processes", "2")
    try:
        yield server
    finally:
        server.stop()
