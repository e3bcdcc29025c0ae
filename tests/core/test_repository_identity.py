"""Repositories: unique per organization + provider + external id, names may repeat; the
schema upgrade that gets an existing database there; inCommit across same-named repositories."""

from __future__ import annotations

from typing import Any

import pytest
from peewee import IntegrityError

from server.core.commands import InCommit, StatusDetails
from server.core.errors import InvalidArgument
from server.storage.models import Commit, GroupLink, Repository, db
from server.storage.upgrade_repository import IDENTITY_INDEX, NAME_INDEX, upgrade_repository_identity
from tests import factories as f
from tests.core.helpers import bulk


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _old_schema() -> None:
    """The schema before the upgrade: unique names, no provider or external id."""
    db.execute_sql(f"DROP INDEX {IDENTITY_INDEX}")
    db.execute_sql(f"DROP INDEX {NAME_INDEX}")
    for column in ("provider", "external_id"):
        db.execute_sql(f"ALTER TABLE repository DROP COLUMN {column}")
    db.execute_sql(f"CREATE UNIQUE INDEX {NAME_INDEX} ON repository (organization_id, name)")


def test_the_upgrade_drops_name_uniqueness_and_adds_the_identity_idempotently(w: dict[str, Any]) -> None:
    with db.atomic():
        _old_schema()
        upgrade_repository_identity()
        upgrade_repository_identity()
    assert {"provider", "external_id"} <= {c.name for c in db.get_columns("repository")}
    indexes = {i.name: i.unique for i in db.get_indexes("repository")}
    assert (indexes[NAME_INDEX], indexes[IDENTITY_INDEX]) == (False, True)


def test_two_repositories_may_share_a_name_but_not_a_provider_and_external_id(w: dict[str, Any]) -> None:
    org = w["org"]
    Repository.create(organization=org, name="app", provider="integrations:github", external_id="1")
    Repository.create(organization=org, name="app", provider="integrations:gitlab", external_id="1")
    Repository.create(organization=org, name="app")
    Repository.create(organization=org, name="app")  # hand-made repositories have no identity
    with pytest.raises(IntegrityError), db.atomic():
        Repository.create(organization=org, name="other", provider="integrations:github", external_id="1")


def _in_commit(key: str) -> StatusDetails:
    return StatusDetails(in_commit=InCommit(commit=key, repository="app"))


def test_in_commit_finds_the_commit_in_any_repository_of_that_name(w: dict[str, Any]) -> None:
    first = Repository.create(organization=w["org"], name="app", provider="integrations:github", external_id="1")
    second = Repository.create(organization=w["org"], name="app", provider="integrations:gitlab", external_id="9")
    Commit.create(organization=w["org"], repository=first, key="aaa")
    wanted = Commit.create(organization=w["org"], repository=second, key="bbb")
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="resolved", status_details=_in_commit("bbb"))
    assert GroupLink.get(GroupLink.group == g.id).linked_id == wanted.id


def test_a_commit_in_none_of_the_named_repositories_is_not_found(w: dict[str, Any]) -> None:
    for n in ("1", "2"):
        Repository.create(organization=w["org"], name="app", provider="integrations:github", external_id=n)
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as caught:
        bulk(w["org"].id, [g.id], status="resolved", status_details=_in_commit("ccc"))
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("status_details.in_commit.commit", "Unable to find the given commit.")
    ]
