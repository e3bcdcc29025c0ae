"""Small factories with overridable defaults; each returns the saved model."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from server.core.releases import parse_semver
from server.storage.models import (
    Commit,
    Group,
    GroupRelease,
    Organization,
    OrganizationMember,
    OrganizationMemberTeam,
    Project,
    ProjectTeam,
    Release,
    ReleaseCommit,
    ReleaseProject,
    Repository,
    Team,
    User,
    utcnow,
)

_seq = itertools.count(1)


def org(**kw: Any) -> Organization:
    n = next(_seq)
    return Organization.create(**{"slug": f"org-{n}", "name": f"Org {n}", **kw})


def project(organization: Organization, **kw: Any) -> Project:
    n = next(_seq)
    return Project.create(**{"organization": organization, "slug": f"proj-{n}", "name": f"Project {n}", **kw})


def team(organization: Organization, *, projects: tuple[Project, ...] = (), **kw: Any) -> Team:
    n = next(_seq)
    t = Team.create(**{"organization": organization, "slug": f"team-{n}", "name": f"Team {n}", **kw})
    for p in projects:
        ProjectTeam.create(project=p, team=t)
    return t


def user(**kw: Any) -> User:
    n = next(_seq)
    return User.create(**{"username": f"user{n}", "email": f"user{n}@example.com", "name": f"User {n}", **kw})


def member(organization: Organization, u: User, *, teams: tuple[Team, ...] = (), **kw: Any) -> OrganizationMember:
    m = OrganizationMember.create(organization=organization, user=u, **kw)
    for t in teams:
        OrganizationMemberTeam.create(member=m, team=t)
    return m


def group(p: Project, **kw: Any) -> Group:
    now = utcnow()
    defaults: dict[str, Any] = {
        "project": p,
        "first_seen": now - dt.timedelta(days=30),
        "last_seen": now - dt.timedelta(hours=1),
        "status": 0,
        "substatus": 3,
        "title": "Error",
    }
    defaults.update(kw)
    defaults.setdefault("active_at", defaults["first_seen"])
    return Group.create(**defaults)


def release(p: Project, version: str, *, added: dt.datetime | None = None, **kw: Any) -> Release:
    fields = {**(parse_semver(version) or {}), **kw}
    r = Release.create(organization=p.organization_id, version=version, date_added=added or utcnow(), **fields)
    ReleaseProject.create(release=r, project=p)
    return r


def group_release(g: Group, r: Release, *, last_seen: dt.datetime | None = None) -> GroupRelease:
    return GroupRelease.create(project=g.project_id, group=g, release=r, last_seen=last_seen or utcnow())


def commit(organization: Organization, *, repo: str = "acme/app", key: str = "abc123",
           releases: tuple[Release, ...] = ()) -> Commit:  # fmt: skip
    repository, _ = Repository.get_or_create(organization=organization, name=repo)
    c = Commit.create(organization=organization, repository=repository, key=key)
    for r in releases:
        ReleaseCommit.create(release=r, commit=c)
    return c


def world() -> dict[str, Any]:
    """An organization with one project, a team on it and an acting member in that team."""
    o = org()
    p = project(o)
    t = team(o, projects=(p,))
    u = user()
    member(o, u, teams=(t,))
    return {"org": o, "project": p, "team": t, "user": u}


def sibling_project(w: dict[str, Any]) -> Project:
    """A second project of the world's organization that the world's team (and user) can access."""
    p = project(w["org"])
    ProjectTeam.create(project=p, team=w["team"])
    return p
