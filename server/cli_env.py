"""Command-line flags that fall back to an environment variable.

Every flag names its variable (shown in --help, kept on the argparse action as `env`), so the
README's configuration table can be checked against the parser by a test.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

TRUE = frozenset({"1", "true", "yes", "on"})


def flag(parser: argparse.ArgumentParser, name: str, *, env: str, help: str, **options: Any) -> argparse.Action:
    """`name` with value from the command line, else $env, else options["default"]; other options
    (type=...) go to argparse as they are."""
    default = options.pop("default", None)
    raw = os.environ.get(env)
    # argparse converts a string default with `type`, so a bad $env fails like a bad flag would.
    value = raw if raw else default
    shown = f" (env {env}; default: %(default)s)" if default is not None else f" (env {env})"
    action = parser.add_argument(name, default=value, help=help + shown, **options)
    action.env = env  # type: ignore[attr-defined]
    return action


def switch(parser: argparse.ArgumentParser, name: str, *, env: str, help: str) -> argparse.Action:
    """An on/off flag; $env set to 1/true/yes/on turns it on."""
    on = os.environ.get(env, "").strip().lower() in TRUE
    action = parser.add_argument(name, action="store_true", default=on, help=f"{help} (env {env}=1)")
    action.env = env  # type: ignore[attr-defined]
    return action


def env_of(action: argparse.Action) -> str | None:
    return getattr(action, "env", None)
