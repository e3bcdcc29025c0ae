"""Validation of a command against every project of the selection, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from server.core import assignee, releases
from server.core.commands import ADMIN_SCOPES, IgnoreConditions, UpdateCommand
from server.core.context import ActorView, UpdateContext
from server.core.errors import FieldViolation, InvalidArgument, PermissionDenied, ViolationCollector
from server.storage.models import Commit, Project, Release, Repository

NO_RELEASE = "No release data present in the system to form a basis for 'Next Release'"
MAX_WINDOW = 10080
# Sentry sets no upper bound on durations and counts; a duration past the calendar's end would
# overflow the snooze's datetime, so amounts stop at the largest 32-bit value (~4000 years).
MAX_AMOUNT = 2**31 - 1
RELEASE_KINDS = ("in_release", "in_next_release", "in_commit")


@dataclass
class Validated:
    """What validation looked up, so the writers need not look it up again."""

    release: Release | None = None  # in_release / in_next_release (single project)
    commit: Commit | None = None
    assignee: ActorView | None = None
    assignee_set: bool = False
    releases_by_project: dict[int, Release | None] = field(default_factory=dict)


def validate(ctx: UpdateContext) -> Validated:
    cmd = ctx.command
    _check_discard(ctx)
    errors = ViolationCollector()
    _check_ignore_ranges(cmd, errors)
    errors.raise_if_any()
    validated = Validated()
    check = None
    if cmd.assigned_to is not None:
        check = assignee.check_assignee(ctx, assignee=cmd.assigned_to)
        validated.assignee, validated.assignee_set = check.view, True
    for project in sorted(ctx.projects.values(), key=lambda p: p.id):
        _validate_for_project(ctx, project, validated)
        if check is not None:
            assignee.check_project(check, project=project)
    return validated


def _check_discard(ctx: UpdateContext) -> None:
    cmd = ctx.command
    if cmd.discard is None:
        return
    # Sentry's validate_discard checks the scope only for a discard that is asked for: a
    # `discard: false` is no discard, and a writer may send it (alone it changes nothing; with
    # other fields it is refused below, as for an admin).
    if cmd.discard and not (ctx.caller.scopes & ADMIN_SCOPES):
        raise PermissionDenied(
            "You do not have permission to discard events", reason="MISSING_SCOPE", scope="event:admin"
        )
    others = [f for f in cmd.sent_fields() if f != "discard"]
    if others:
        raise InvalidArgument(
            "Other attributes cannot be updated when discarding",  # Sentry's detail; the fields named below
            violations=[
                FieldViolation(name, "Cannot be updated when discarding.") for name in _field_names(cmd, others)
            ],
            reason="DISCARD_WITH_OTHER_FIELDS",
            detail=True,
        )


def _field_names(cmd: UpdateCommand, sent: list[str]) -> list[str]:
    """sent_fields() with its "ignore_*" spelled out as the request's top-level fields."""
    ignore = cmd.top_level_ignore
    spelled = [f"ignore_{f.name}" for f in fields(ignore) if getattr(ignore, f.name) is not None]
    return [name for name in sent if name != "ignore_*"] + (spelled if "ignore_*" in sent else [])


def _check_ignore_ranges(cmd: UpdateCommand, errors: ViolationCollector) -> None:
    forms: list[tuple[str, IgnoreConditions]] = [("", cmd.top_level_ignore)]
    if cmd.status_details is not None:
        forms.append(("status_details.", cmd.status_details.ignore))
    for prefix, cond in forms:
        for name in ("duration", "count", "window", "user_count", "user_window"):
            value = getattr(cond, name)
            path = f"{prefix}ignore_{name}"
            limit = MAX_WINDOW if name.endswith("window") else MAX_AMOUNT
            if value is not None and value < 0:
                errors.add(path, "Ensure this value is greater than or equal to 0.")
            elif value is not None and value > limit:
                errors.add(path, f"Ensure this value is less than or equal to {limit}.")


def _validate_for_project(ctx: UpdateContext, project: Project, out: Validated) -> None:
    details = ctx.command.status_details
    if details is not None:
        _validate_resolution(ctx, project, out)


def _validate_resolution(ctx: UpdateContext, project: Project, out: Validated) -> None:
    details = ctx.command.status_details
    assert details is not None
    org_id = ctx.organization.id
    if details.in_release is not None:
        out.release = _release_for(org_id, project, details.in_release)
        out.releases_by_project[project.id] = out.release
    elif details.in_next_release is not None:
        # Sentry's validator turns any boolean into the most recent release (§5 item 3).
        release = releases.most_recent_release(project_id=project.id)
        if release is None:
            raise InvalidArgument.field("status_details.in_next_release", NO_RELEASE)
        out.release = release
        out.releases_by_project[project.id] = release
    elif details.in_commit is not None:
        out.commit = _commit_for(org_id, details.in_commit.repository, details.in_commit.commit)


def _release_for(org_id: int, project: Project, version: str) -> Release:
    path = "status_details.in_release"
    if not version.strip():
        raise InvalidArgument.field(path, "This field may not be blank.")
    version = version.strip()  # DRF trims string fields before validating them
    if version == "latest":
        release = releases.most_recent_release(project_id=project.id)
        if release is None:
            raise InvalidArgument.field(path, NO_RELEASE)
        return release
    found = None
    if _storable(version):
        found = releases.find_release(organization_id=org_id, project_id=project.id, version=version)
    if found is None:
        raise InvalidArgument.field(path, "Unable to find a release with the given version.")
    return found


def _commit_for(org_id: int, repository_name: str, key: str) -> Commit:
    base = "status_details.in_commit"
    errors = ViolationCollector()
    if not repository_name:
        errors.add(f"{base}.repository", "This field is required.")
    if not key:
        errors.add(f"{base}.commit", "This field is required.")
    errors.raise_if_any()
    named = Repository.select(Repository.id).where(
        (Repository.organization == org_id) & (Repository.name == repository_name)
    )
    if not _storable(repository_name) or not named.exists():
        raise InvalidArgument.field(f"{base}.repository", "Unable to find the given repository.")
    # Names are not unique (repositories are per provider + external id): the commit may be in
    # any repository of that name; the lowest commit id wins when several hold it.
    commit: Commit | None = None
    if _storable(key):
        query = Commit.select().where(Commit.repository.in_(named) & (Commit.key == key))
        commit = query.order_by(Commit.id).first()
    if commit is None:
        raise InvalidArgument.field(f"{base}.commit", "Unable to find the given commit.")
    return commit


def _storable(text: str) -> bool:
    """A NUL character cannot be in any stored name (PostgreSQL refuses it in a query)."""
    return "\x00" not in text
