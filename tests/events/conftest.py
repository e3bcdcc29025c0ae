"""The stub of a module's events server: a module that watches defines `server` (its settings)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server.transport.app import Running
from tests.events.support import stub_for


@pytest.fixture()
def stub(server: Running, database: str) -> Iterator[Any]:
    channel, stub = stub_for(server)
    yield stub
    channel.close()
