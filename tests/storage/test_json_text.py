"""json_dumps (server/storage/db.py): the text json.dumps makes, by an encoder made once."""

from __future__ import annotations

import json

import pytest

from server.storage.db import json_dumps


@pytest.mark.parametrize(
    "value",
    ["", "plain", 'q"uote\\back', "é ü 雪 \U0001f600", "\n\t\x00\x1f\x7f", 0, -1, 2**70, 1.5, 0.1, -0.0,
     1e16, 1e-7, True, False, None, float("nan"), float("inf"), [], {}, [1, "a", None],
     {"a": {"b": [1.25, None]}, "é": True}, [[99991, 2, 1, True, 4, "2026-12-01 18:32:55.575694"]],
     [["issue.resolved", 7, {"resolution_type": "now"}, 1, None, "2026-12-01 18:32:55"]]],
)  # fmt: skip
def test_the_text_is_json_dumps_text(value: object) -> None:
    assert json_dumps(value) == json.dumps(value)


def test_what_json_dumps_refuses_it_refuses() -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        json_dumps([object()])
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None"):
        json_dumps({(1, 2): 3})
