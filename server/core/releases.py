"""Release ordering rules used by resolution (§1.14): date order, semver order, the semver test."""

from __future__ import annotations

import bisect
import re
from typing import Any, cast

from peewee import SQL, fn

from server.storage.models import GroupRelease, Release, ReleaseProject

SEMVER_RE = re.compile(
    r"^(?P<package>[^@]+)@(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:\.(?P<revision>\d+))?(?:-(?P<prerelease>[0-9A-Za-z.\-]+))?(?:\+(?P<build>[0-9A-Za-z.\-]+))?$",
    re.ASCII,  # \d is [0-9]: "api@٣.0" is not semver (int() would read it as 3)
)
BIGINT_MAX = 2**63 - 1
BAD_VERSION_CHARS = re.compile(r"[\n\t\x0c\x0b/\\]")
OPEN = 0


def is_valid_version(version: str | None) -> bool:
    if version is None or BAD_VERSION_CHARS.search(version):
        return False
    stripped = version.strip()
    return bool(stripped) and stripped not in (".", "..") and stripped.lower() != "latest"


def parse_semver(version: str) -> dict[str, Any] | None:
    """The semver columns of a version `package@major.minor.patch.revision-pre+build`, or None."""
    if not is_valid_version(version):
        return None
    m = SEMVER_RE.match(version)
    if m is None:
        return None
    nums = {k: int(m.group(k) or 0) for k in ("major", "minor", "patch", "revision")}
    if any(v > BIGINT_MAX for v in nums.values()):
        return None
    build = m.group("build")
    return {
        "package": m.group("package"),
        **nums,
        "prerelease": m.group("prerelease") or "",
        "build_code": build,
        "build_number": int(build) if build and build.isdigit() and int(build) <= BIGINT_MAX else None,
    }


def _project_releases(project_id: int) -> Any:
    return (
        Release.select()
        .join(ReleaseProject, on=(ReleaseProject.release == Release.id))
        .where(ReleaseProject.project == project_id)
    )


def _date_order() -> Any:
    return fn.COALESCE(Release.date_released, Release.date_added)


def most_recent_release(*, project_id: int) -> Release | None:
    """The project's most recent release by COALESCE(date_released, date_added)."""
    query = _project_releases(project_id).order_by(_date_order().desc(), Release.id.desc())
    found: Release | None = query.first()
    return found


def greatest_semver_release(*, project_id: int) -> Release | None:
    # A final release beats its pre-releases: prerelease_case is 1 for an empty prerelease.
    prerelease_case = SQL("CASE WHEN prerelease = '' THEN 1 ELSE 0 END")
    query = (
        _project_releases(project_id)
        .where(Release.package.is_null(False))
        .order_by(
            Release.major.desc(),
            Release.minor.desc(),
            Release.patch.desc(),
            Release.revision.desc(),
            prerelease_case.desc(),
            Release.prerelease.desc(),
        )
    )
    found: Release | None = query.first()
    return found


def follows_semver(*, project_id: int, release_version: str | None = None) -> bool:
    """Sentry's follows_semver_versioning_scheme (uncached: one small query)."""
    recent = list(
        _project_releases(project_id)
        .where(Release.status == OPEN)
        .order_by(Release.date_added.desc(), Release.id.desc())
        .limit(10)
    )
    if not recent:
        return False
    semver = [r.package is not None for r in recent]
    if len(recent) < 3:
        answer = semver[0]
    elif len(recent) < 10:
        answer = any(semver[:3])
    else:
        answer = any(semver[:3]) and sum(semver) >= 3
    if release_version is not None:
        answer = answer and parse_semver(release_version) is not None
    return answer


def find_release(*, organization_id: int, project_id: int, version: str) -> Release | None:
    found: Release | None = (
        _project_releases(project_id)
        .where((Release.organization == organization_id) & (Release.version == version))
        .first()
    )
    return found


def last_releases(group_ids: list[int]) -> dict[int, Release]:
    """Each group's last release (§1.14 get_last_release): the GroupRelease row with the latest
    last_seen, ties broken by the newest row; one query for the whole selection."""
    if not group_ids:
        return {}
    rank = fn.ROW_NUMBER().over(
        partition_by=[GroupRelease.group],
        order_by=[GroupRelease.last_seen.desc(), GroupRelease.id.desc()],
    )
    ranked = (
        GroupRelease.select(GroupRelease.group.alias("gid"), GroupRelease.release.alias("rid"), rank.alias("rn"))
        .where(GroupRelease.group.in_(group_ids))
        .alias("ranked")
    )
    rows = (
        Release.select(Release, ranked.c.gid.alias("gid"))
        .join(ranked, on=(ranked.c.rid == Release.id))
        .where(ranked.c.rn == 1)
        .objects()
    )
    return {cast(Any, row).gid: row for row in rows}


def first_releases_after(*, project_id: int, bases: list[Release]) -> dict[int, Release]:
    """For each base release (by id), the first release of the project added after it (date
    projects, §3.4 a): date_added greater, or equal with a larger id; the earliest by
    COALESCE(date_released, date_added) then id wins. One query, whatever the number of bases."""
    if not bases:
        return {}
    earliest = min(b.date_added for b in bases)
    candidates = list(
        _project_releases(project_id)
        .where(Release.date_added >= earliest)
        .order_by(Release.date_added.asc(), Release.id.asc())
    )
    keys = [(c.date_added, c.id) for c in candidates]
    # best[i] is the preferred release among candidates[i:], so each base costs one bisect.
    best: list[Release | None] = [None] * (len(candidates) + 1)
    for i in range(len(candidates) - 1, -1, -1):
        here, later = candidates[i], best[i + 1]
        best[i] = here if later is None or _date_key(here) <= _date_key(later) else later
    found: dict[int, Release] = {}
    for base in bases:
        nxt = best[bisect.bisect_right(keys, (base.date_added, base.id))]
        if nxt is not None:
            found[base.id] = nxt
    return found


def _date_key(release: Release) -> tuple[Any, int]:
    return (release.date_released or release.date_added, release.id)
