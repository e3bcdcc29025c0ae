"""An update checks before it commits that its caller still waits (servicer.still_wanted)."""

from __future__ import annotations

from typing import Any

import pytest

from server.transport.servicer import still_wanted


class _Context:
    def __init__(self, *, active: bool, remaining: float | None) -> None:
        self.active, self.remaining = active, remaining

    def is_active(self) -> bool:
        return self.active

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.mark.parametrize(
    ("active", "remaining", "wanted"),
    [
        (True, None, True),  # no deadline
        (True, 2.5, True),
        # Past its deadline, though grpc has not marked it inactive yet: a 1 ms deadline used to
        # see its update committed.
        (True, -0.004, False),
        (True, 0.0, False),
        (False, 2.5, False),  # cancelled
    ],
)
def test_a_call_is_wanted_while_active_and_within_its_deadline(active: bool, remaining: Any, wanted: bool) -> None:
    assert still_wanted(_Context(active=active, remaining=remaining))() is wanted  # type: ignore[arg-type]
