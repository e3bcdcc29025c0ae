"""Server options and feature flags from a file and the environment (no database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.core import settings
from server.core.settings import MAX_GROUP_TIMES_SEEN, Settings, SettingsError, load
from server.storage.models import Organization


def _file(tmp_path: Path, data: object) -> str:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_defaults_without_file_or_environment() -> None:
    loaded = load(path=None, environ={})
    assert loaded.options == {MAX_GROUP_TIMES_SEEN: 0}
    assert loaded.features == {}


def test_the_file_sets_options_and_features_and_the_environment_overrides_it(tmp_path: Path) -> None:
    path = _file(tmp_path, {"options": {MAX_GROUP_TIMES_SEEN: 100}, "features": {"projects:discard-groups": [1]}})
    assert load(path=path, environ={}).options[MAX_GROUP_TIMES_SEEN] == 100
    environ = {
        "ISSUES_SETTINGS": path,
        "ISSUES_OPTIONS": json.dumps({MAX_GROUP_TIMES_SEEN: 5}),
        "ISSUES_FEATURES": json.dumps({"projects:discard-groups": True}),
    }
    loaded = load(environ=environ)
    assert loaded.options[MAX_GROUP_TIMES_SEEN] == 5
    assert loaded.features == {"projects:discard-groups": frozenset({"*"})}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"options": {"no.such.option": 1}}, "unknown option 'no.such.option'"),
        ({"options": {MAX_GROUP_TIMES_SEEN: -1}}, "must be a non-negative integer"),
        ({"options": {MAX_GROUP_TIMES_SEEN: "10"}}, "must be a non-negative integer"),
        ({"features": {"projects:discard-groups": "acme"}}, "must be true, false or a list"),
        ({"flags": {}}, "unknown settings section 'flags'"),
        ([], "must be a JSON object"),
    ],
)
def test_malformed_settings_are_refused_with_the_reason(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(path=_file(tmp_path, data), environ={})


def test_unreadable_file_and_bad_environment_json_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load(path=str(tmp_path / "missing.json"), environ={})
    with pytest.raises(SettingsError, match=r"\$ISSUES_OPTIONS is not valid JSON"):
        load(environ={"ISSUES_OPTIONS": "{"})


def test_a_feature_is_enabled_by_id_slug_all_or_the_organizations_own_list() -> None:
    org = Organization(id=7, slug="acme", features=[])
    name = "projects:discard-groups"
    try:
        for scope in ([7], ["acme"], True):
            settings.configure(load(environ={"ISSUES_FEATURES": json.dumps({name: scope})}))
            assert settings.feature_enabled(org, name)
        settings.configure(load(environ={"ISSUES_FEATURES": json.dumps({name: [8, "other"]})}))
        assert not settings.feature_enabled(org, name)
        org.features = [name]
        assert settings.feature_enabled(org, name)
    finally:
        settings.configure(Settings())
