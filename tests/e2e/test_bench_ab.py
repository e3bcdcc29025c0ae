"""bench/ab.py: what a variant means, and which groups each round may touch."""

from __future__ import annotations

import pytest

from bench import ab

URL = "postgresql://x@h/db"


def test_a_variant_is_serve_flags_another_database_and_environment() -> None:
    variant = ab.parse_variant('--workers 4 url=postgresql://x@h/copy env=PGOPTIONS="-c a=b"', url=URL)
    assert variant.args == ("--workers", "4")
    assert variant.url == "postgresql://x@h/copy"
    assert variant.env == (("PGOPTIONS", "-c a=b"),)
    plain = ab.parse_variant("-", url=URL)
    assert (plain.args, plain.url, plain.env, plain.cwd) == ((), URL, (), None)


def test_another_checkout_runs_from_its_root_not_only_on_the_path() -> None:
    # python -m server imports from its current directory first: PYTHONPATH alone ran this tree
    variant = ab.parse_variant("tree=/src/old --workers 4", url=URL)
    assert variant.cwd == "/src/old"
    assert variant.env == (("PYTHONPATH", "/src/old:/src/old/generated"),)
    assert variant.args == ("--workers", "4")


def test_variants_on_one_database_never_toggle_the_same_groups() -> None:
    blocks = [ab.resolve_block(index=i, round_no=0, variants=3, shared_db=True, first_touch=False) for i in range(3)]
    ids = [set(range(first, first + count)) for first, count in blocks]
    assert not ids[0] & ids[1] and not ids[1] & ids[2] and not ids[0] & ids[2]


def test_first_touch_takes_fresh_ids_every_round_and_refuses_to_run_out() -> None:
    seen: set[int] = set()
    for round_no in range(2):
        for index in range(2):
            first, count = ab.resolve_block(
                index=index, round_no=round_no, variants=2, shared_db=True, first_touch=True
            )
            block = set(range(first, first + count))
            assert first >= ab.FIRST_TOUCH_FROM and not block & seen
            seen |= block
    # Separate databases: each variant's first touch of the same ids.
    same = {ab.resolve_block(index=i, round_no=1, variants=2, shared_db=False, first_touch=True) for i in range(2)}
    assert len(same) == 1
    with pytest.raises(SystemExit):
        ab.resolve_block(index=1, round_no=7, variants=2, shared_db=True, first_touch=True)


def test_variants_on_one_database_take_turns_on_each_part() -> None:
    # A part whose groups were toggled more often costs more: no variant may keep one part.
    firsts = {ab.resolve_block(index=0, round_no=r, variants=2, shared_db=True, first_touch=False)[0] for r in range(4)}
    assert len(firsts) == 4
