"""A realistic data set written straight with insert_many (the JSON seeder is too slow for 100k)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from server.storage import models as m
from server.storage.db import make_database
from server.storage.migrate import migrate

BATCH = 1000
ORG_ID = 1


@dataclass(frozen=True)
class Shape:
    projects: int
    groups: int
    users: int
    teams: int
    releases: int


FULL = Shape(projects=10, groups=100_000, users=50, teams=5, releases=20)
QUICK = Shape(projects=10, groups=12_000, users=10, teams=2, releases=5)


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def _insert(model: type[m.BaseModel], rows: list[dict[str, Any]]) -> None:
    for chunk in _batches(rows):
        model.insert_many(chunk).execute()


def _people(shape: Shape, now: dt.datetime) -> None:
    _insert(m.Organization, [{"id": ORG_ID, "slug": "bench", "name": "Bench", "features": []}])
    _insert(m.Organization, [{"id": 2, "slug": "other", "name": "Other org", "features": []}])
    _insert(
        m.User,
        [
            {
                "id": u,
                "username": f"user{u}",
                "email": f"user{u}@bench.example",
                "name": f"User {u}",
            }
            for u in range(1, shape.users + 1)
        ],
    )
    _insert(
        m.Team,
        [
            {"id": t, "organization": ORG_ID, "slug": f"team-{t}", "name": f"Team {t}"}
            for t in range(1, shape.teams + 1)
        ],
    )
    roles = ["owner"] + ["member"] * (shape.users - 1)
    _insert(
        m.OrganizationMember,
        [{"id": u, "organization": ORG_ID, "user": u, "role": roles[u - 1]} for u in range(1, shape.users + 1)],
    )
    # The owner (user 1) is in every team; the others in one team each.
    links = [{"member": 1, "team": t} for t in range(1, shape.teams + 1)]
    links += [{"member": u, "team": 1 + u % shape.teams} for u in range(2, shape.users + 1)]
    _insert(m.OrganizationMemberTeam, links)


def _projects(shape: Shape, now: dt.datetime) -> None:
    _insert(
        m.Project,
        [
            {
                "id": p,
                "organization": ORG_ID,
                "slug": f"proj-{p}",
                "name": f"Project {p}",
                "platform": "python",
            }
            for p in range(1, shape.projects + 1)
        ],
    )
    _insert(
        m.Project,
        [
            {
                "id": shape.projects + 1,
                "organization": 2,
                "slug": "elsewhere",
                "name": "Elsewhere",
                "platform": "go",
            }
        ],
    )
    _insert(
        m.ProjectTeam,
        [{"project": p, "team": 1 + p % shape.teams} for p in range(1, shape.projects + 1)],
    )
    releases = [
        {
            "id": r,
            "organization": ORG_ID,
            "version": f"1.{r}.0",
            "major": 1,
            "minor": r,
            "patch": 0,
            "date_added": now - dt.timedelta(days=shape.releases - r),
        }
        for r in range(1, shape.releases + 1)
    ]
    _insert(m.Release, releases)
    _insert(
        m.ReleaseProject,
        [{"release": r, "project": p} for r in range(1, shape.releases + 1) for p in range(1, shape.projects + 1)],
    )


def _groups(shape: Shape, now: dt.datetime, rng: random.Random) -> None:
    rows = []
    for gid in range(1, shape.groups + 1):
        first = now - dt.timedelta(days=rng.randint(1, 90))
        rows.append(
            {
                "id": gid,
                "project": 1 + gid % shape.projects,
                "status": 0,
                "substatus": 3,
                "first_seen": first,
                "last_seen": now - dt.timedelta(minutes=rng.randint(1, 10_000)),
                "active_at": first,
                "times_seen": rng.randint(1, 5000),
                "user_count": rng.randint(0, 300),
                "short_id": gid,
                "title": f"ValueError: bad value {gid}",
                "culprit": f"app.views.handler_{gid % 97}",
                "message": "ValueError",
                "platform": "python",
                "priority": 50,
                "level": 40,
            }
        )
    _insert(m.Group, rows)
    _insert(
        m.GroupInbox,
        [
            {"group": gid, "project": 1 + gid % shape.projects, "organization": ORG_ID, "reason": 0}
            for gid in range(1, shape.groups + 1, 3)
        ],
    )
    _insert(
        m.GroupRelease,
        [
            {"project": 1 + gid % shape.projects, "group": gid, "release": 1 + gid % shape.releases}
            for gid in range(1, shape.groups + 1, 5)
        ],
    )


def _reset_sequences(shape: Shape) -> None:
    """PostgreSQL keeps its own id sequences: move them past the explicit ids written above."""
    from server.storage.db import is_postgres

    if not is_postgres():
        return
    for model in (
        m.Organization,
        m.User,
        m.Team,
        m.OrganizationMember,
        m.Project,
        m.Release,
        m.Group,
    ):
        table = model._meta.table_name
        sequence = f"""pg_get_serial_sequence('"{table}"', 'id')"""
        m.db.execute_sql(f'SELECT setval({sequence}, (SELECT MAX(id) FROM "{table}"))')


def seed(url: str, shape: Shape) -> dict[str, int]:
    """Create the schema on `url` and fill it; returns row counts."""
    make_database(url, workers=2)
    migrate()
    now = m.utcnow()
    rng = random.Random(7)  # the same data on every run
    with m.db.connection_context(), m.db.atomic():
        _people(shape, now)
        _projects(shape, now)
        _groups(shape, now, rng)
        _reset_sequences(shape)
    with m.db.connection_context():
        m.db.execute_sql("ANALYZE")  # fresh statistics, as a long-running database would have
        counts = {
            "groups": m.Group.select().count(),
            "projects": m.Project.select().count(),
            "users": m.User.select().count(),
            "releases": m.Release.select().count(),
        }
    m.db.obj.close_all()
    return counts
