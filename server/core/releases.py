"""Release ordering rules used by resolution (§1.14): date order, semver order, the semver test."""

from __future__ import annotations

import re
from typing import Any

from peewee import SQL, fn

from server.models import GroupRelease, Release, ReleaseProject

SEMVER_RE = re.compile(
    r"^(?P<package>[^@]+)@(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:\.(?P<revision>\d+))?(?:-(?P<prerelease>[0-9A-Za-z.\-]+))?(?:\+(?P<build>[0-9A-Za-z.\-]+))?$"
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
    return query.first()


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
    return query.first()


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
    return (
        _project_releases(project_id)
        .where((Release.organization == organization_id) & (Release.version == version))
        .first()
    )


def last_release_versions(group_ids: list[int]) -> dict[int, str]:
    """Each group's last release: the GroupRelease row with the latest last_seen (one query)."""
    rows = (
        GroupRelease.select(GroupRelease.group, GroupRelease.last_seen, Release.version, Release.id)
        .join(Release)
        .where(GroupRelease.group.in_(group_ids))
        .order_by(GroupRelease.last_seen.asc(), GroupRelease.id.asc())
        .tuples()
    )
    latest: dict[int, str] = {}
    for group_id, _last_seen, version, _rid in rows:
        latest[group_id] = version  # ascending order: the last one seen wins
    return latest


def first_release_after(*, organization_id: int, project_id: int, version: str) -> Release | None:
    """The first release of the project added after the release `version` (date projects)."""
    base = Release.get_or_none(
        (Release.organization == organization_id) & (Release.version == version)
    )
    if base is None:
        return None
    later = (Release.date_added > base.date_added) | (
        (Release.date_added == base.date_added) & (Release.id > base.id)
    )
    query = (
        _project_releases(project_id).where(later).order_by(_date_order().asc(), Release.id.asc())
    )
    return query.first()
