"""An update checks before it commits that its caller still waits (servicer.still_wanted), and a
call the core stopped says whether its deadline passed or its client cancelled (call_status)."""

from __future__ import annotations

from typing import Any

import pytest
from google.rpc import code_pb2

from server.core.errors import Cancelled, NotFound
from server.transport.errors import call_status
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


@pytest.mark.parametrize(
    ("active", "remaining", "code"),
    [
        (True, -0.01, code_pb2.DEADLINE_EXCEEDED),
        (False, 0.0, code_pb2.DEADLINE_EXCEEDED),
        (False, 2.5, code_pb2.CANCELLED),
        (False, None, code_pb2.CANCELLED),
    ],
)
def test_a_stopped_call_is_deadline_exceeded_or_cancelled(active: bool, remaining: Any, code: int) -> None:
    stopped = Cancelled("The call was cancelled or its deadline expired; nothing was changed", reason="CALL_CANCELLED")
    status = call_status(stopped, _Context(active=active, remaining=remaining))  # type: ignore[arg-type]
    assert status.code == code and status.message == stopped.message


def test_other_errors_keep_their_code_past_the_deadline() -> None:
    missing = NotFound("Issue not found", reason="GROUP_NOT_FOUND")
    status = call_status(missing, _Context(active=True, remaining=-1.0))  # type: ignore[arg-type]
    assert status.code == code_pb2.NOT_FOUND
