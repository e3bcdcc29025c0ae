"""The access statement reads a member's team projects only where permissions reads them."""

from __future__ import annotations

import pytest

from server.core import permissions
from server.core.access_sql import load_access
from server.storage.models import Organization, ProjectTeam
from tests import factories as f
from tests.core.helpers import caller

pytestmark = pytest.mark.db


def test_a_plain_member_gets_the_team_projects_of_this_organization_only(database: str) -> None:
    w = f.world()
    sibling = f.sibling_project(w)
    # A link of the member's team to another organization's project counts for nothing here.
    ProjectTeam.create(project=f.project(f.org()), team=w["team"])
    f.team(w["org"], projects=(f.project(w["org"]),))  # a team the member is not in
    row = load_access(organization_id=w["org"].id, user_id=w["user"].id)
    assert row.member is not None and row.member.role == "member"
    assert row.team_project_ids == {w["project"].id, sibling.id}
    access = permissions.authorize(caller=caller(w["user"].id), row=row, needs=permissions.READ_SCOPES, what="read")
    assert access.project_ids == row.team_project_ids


@pytest.mark.parametrize("role", sorted(permissions.GLOBAL_ACCESS_ROLES))
def test_a_global_role_sees_the_whole_organization_without_its_team_projects_read(database: str, role: str) -> None:
    w = f.world()
    u = f.user()
    f.member(w["org"], u, teams=(w["team"],), role=role)
    row = load_access(organization_id=w["org"].id, user_id=u.id)
    assert row.team_project_ids == frozenset()  # not aggregated: permissions does not read them
    access = permissions.authorize(caller=caller(u.id), row=row, needs=permissions.READ_SCOPES, what="read")
    assert access.project_ids is None


def test_an_open_organization_gives_every_member_the_whole_organization(database: str) -> None:
    w = f.world()
    Organization.update(allow_joinleave=True).where(Organization.id == w["org"].id).execute()
    row = load_access(organization_id=w["org"].id, user_id=w["user"].id)
    assert row.team_project_ids == frozenset()
    access = permissions.authorize(caller=caller(w["user"].id), row=row, needs=permissions.READ_SCOPES, what="read")
    assert access.project_ids is None
