"""The README's configuration table and the CLI parser describe the same flags and variables."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from server.__main__ import _parser
from server.cli_env import env_of

README = Path(__file__).resolve().parent.parent / "README.md"
CELL = re.compile(r"`([^`]*)`")


def _commands() -> dict[str, argparse.ArgumentParser]:
    """ "" for the top-level parser, then each subcommand by name."""
    parser = _parser()
    found = {"": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _options() -> dict[str, argparse.Action]:
    """Every flag as the README writes it: `--database-url`, `serve --address`, ..."""
    return {
        f"{command} {action.option_strings[-1]}".strip(): action
        for command, parser in _commands().items()
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    }


def _readme_rows() -> dict[str, str]:
    """flag -> env of each row of the table under '## Configuration' that names a flag."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        flag, env = CELL.findall(cells[1]), CELL.findall(cells[2])
        rows[flag[0]] = env[0] if env else ""
    return rows


def test_every_flag_has_an_environment_variable_and_a_help_line() -> None:
    missing = [name for name, action in _options().items() if not env_of(action) or not action.help]
    assert not missing, f"flags without an environment variable or help: {missing}"


def test_every_argument_of_every_command_has_help() -> None:
    bare = [
        f"{command} {action.dest}".strip()
        for command, parser in _commands().items()
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert not bare, f"arguments without help: {bare}"


def test_the_readme_table_lists_exactly_the_flags_of_the_parser_with_their_variables() -> None:
    parser_rows = {name: env_of(action) or "" for name, action in _options().items()}
    readme_rows = _readme_rows()
    assert set(readme_rows) == set(parser_rows), (
        f"missing from README: {sorted(set(parser_rows) - set(readme_rows))}; "
        f"not in the parser: {sorted(set(readme_rows) - set(parser_rows))}"
    )
    wrong = {name: (readme_rows[name], env) for name, env in parser_rows.items() if readme_rows[name] != env}
    assert not wrong, f"README env differs from the parser's (README, parser): {wrong}"


def test_a_flag_falls_back_to_its_variable_then_to_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISSUES_WORKERS", "3")
    monkeypatch.setenv("ISSUES_TRACING", "true")
    monkeypatch.delenv("ISSUES_GRACE", raising=False)
    args = _parser().parse_args(["serve", "--tokens", "t.json"])
    assert (args.workers, args.tracing, args.grace) == (3, True, 10.0)
    assert _parser().parse_args(["serve", "--workers", "5"]).workers == 5  # the flag wins
