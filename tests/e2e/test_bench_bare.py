"""The single-call floor replays captured statements for other groups: the template group's id
must be replaced wherever the server put it (plain, in arrays, inside JSON cells), and nowhere
else, or the floor would write to one group over and over and flatter every figure."""

from __future__ import annotations

from bench import report
from bench.bare import substitute

TEMPLATE = 99_991


def test_the_template_id_is_replaced_in_every_parameter_shape() -> None:
    params = [
        TEMPLATE,
        [TEMPLATE, 7],
        {"gid": TEMPLATE, "uid": 1},
        '[[99991, 2, 1, true, 4, "2026-12-01 00:53:41.712424"]]',
        '[["issue.resolved", 99991, {}, 1]]',
    ]
    assert substitute(params, TEMPLATE, 42) == [
        42,
        [42, 7],
        {"gid": 42, "uid": 1},
        '[[42, 2, 1, true, 4, "2026-12-01 00:53:41.712424"]]',
        '[["issue.resolved", 42, {}, 1]]',
    ]


def test_other_numbers_that_contain_the_template_digits_stay() -> None:
    text = '["2026-12-01 00:53:41.999912", 199991, 999910]'
    assert substitute(text, TEMPLATE, 42) == text
    assert substitute(TEMPLATE + 1, TEMPLATE, 42) == TEMPLATE + 1
    assert substitute(True, 1, 42) is True  # a bool is not an id, even where it equals one


def test_the_report_shows_the_floor_next_to_our_noop() -> None:
    floor = {
        "processes": 2,
        "threads": 12,
        "round_trips": {"resolved": 3, "get": 1},
        "scenarios": {
            "noop (ours)": {"throughput_rps": 3000.0, "ratio_to_noop": 1.0, "server_cpu_ms_per_call": 0.5},
            "get (bare, warm)": {"throughput_rps": 1200.0, "ratio_to_noop": 0.4, "server_cpu_ms_per_call": 0.8},
        },
    }
    lines = "\n".join(report._bare_lines(floor))
    assert "| get (bare, warm) | 1200.0 | 0.4 |" in lines
    assert "2 processes x 12 threads" in lines
    assert report._bare_lines({}) == []
