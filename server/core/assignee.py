"""Whom `assigned_to` names (§2.3): parsing and Sentry's checks in order, set-based per project."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from server.core.assignee_sql import load_assignee
from server.core.commands import Assignee
from server.core.context import ActorView, UpdateContext
from server.core.errors import InvalidArgument
from server.storage.models import (
    OrganizationMember,
    OrganizationMemberTeam,
    Project,
    ProjectTeam,
    Team,
    User,
)

FIELD = "assigned_to"
PARSE_ERROR = "Could not parse actor. Format should be `type:id` where type is `team` or `user`."
NON_TEAM_MEMBER = "Cannot assign to non-team member"
TEAM_WITHOUT_ACCESS = "Cannot assign to a team without access to the project"
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class _Target:
    kind: str  # "user", "team" or "unassign"
    id: int = 0
    username: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class AssigneeCheck:
    """The resolved assignee (None = unassign) and, per project id, why it is refused there."""

    view: ActorView | None
    refused: dict[int, str] = field(default_factory=dict)


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument.field(FIELD, message)


def display_name(user: User) -> str:
    """Sentry's User.get_display_name: name, else e-mail, else username."""
    return str(user.name or user.email or user.username)


def user_actor(user: User) -> ActorView:
    return ActorView(type="user", id=user.id, name=display_name(user), email=user.email)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # "²".isdigit() is true but int("²") fails


def _parse_actor_string(text: str) -> _Target:
    text = text.strip()
    if text in ("", "0"):  # Sentry treats null, "" and 0 as unassign
        return _Target("unassign")
    if "\x00" in text:  # no name contains NUL, and PostgreSQL refuses it in a query
        raise _invalid(PARSE_ERROR)
    if _is_number(text):
        return _Target("user", int(text))
    kind, sep, rest = text.partition(":")
    if sep and kind in ("user", "team"):
        if not _is_number(rest):
            raise _invalid(PARSE_ERROR)
        return _Target(kind, int(rest))
    return _Target("user", username=text)


def _by_id(model: Any, object_id: int) -> Any:
    """The row with this id, or None; ids beyond a bigint cannot exist (and would fail on PG)."""
    return model.get_or_none(model.id == object_id) if 0 < object_id <= MAX_ID else None


def _parse(assignee: Assignee) -> _Target:
    kind, value = assignee.kind, assignee.value
    if kind == "unassign" or (kind == "user_id" and not value):
        return _Target("unassign")
    if kind in ("user_id", "team_id"):
        return _Target(kind.removesuffix("_id"), int(value or 0))
    text = str(value or "")
    if kind in ("username", "email") and "\x00" in text:
        raise _invalid(PARSE_ERROR)
    if kind == "username":
        return _Target("user", username=text)
    if kind == "email":
        return _Target("user", email=text)
    return _parse_actor_string(text)


def _lookup_user(target: _Target) -> User:
    if target.username is None and target.email is None:
        user: User | None = _by_id(User, target.id)
        if user is None:
            raise _invalid("User does not exist")
        return user
    if target.username is not None:
        user = User.get_or_none(User.username == target.username)
        if user is None:  # Sentry documents "username or primary e-mail"
            user = User.get_or_none(User.email == target.username)
    else:
        user = User.get_or_none(User.email == target.email)
    if user is None:  # an unknown name is a parse error in Sentry, not "does not exist"
        raise _invalid(PARSE_ERROR)
    return user


def check_assignee(ctx: UpdateContext, *, assignee: Assignee) -> AssigneeCheck:
    """Errors 1-6 of §2.3 raise at once; 7-8 are per project and returned in `refused`."""
    target = _parse(assignee)
    if target.kind == "unassign":
        return AssigneeCheck(view=None)
    if target.kind == "team":
        return _check_team(ctx, team_id=target.id)
    if target.username is None and target.email is None:
        return _check_user_by_id(ctx, user_id=target.id)
    return _check_user(ctx, user=_lookup_user(target))


def _check_user_by_id(ctx: UpdateContext, *, user_id: int) -> AssigneeCheck:
    """The common case in one statement; the same checks, in the same order, as _check_user."""
    if not 0 < user_id <= MAX_ID:  # ids beyond a bigint cannot exist (and would fail on PG)
        raise _invalid("User does not exist")
    rows = load_assignee(user_id=user_id, organization_id=ctx.organization.id)
    if rows.user is None:
        raise _invalid("User does not exist")
    return _member_check(ctx, user=rows.user, member=rows.member, reachable=lambda: rows.reachable_project_ids)


def _check_team(ctx: UpdateContext, *, team_id: int) -> AssigneeCheck:
    team = _by_id(Team, team_id)
    if team is None:
        raise _invalid("Team does not exist")
    if team.organization_id != ctx.organization.id:
        raise _invalid("Team is not a member of this organization")
    view = ActorView(type="team", id=team.id, name=team.slug)
    if ctx.organization.allow_joinleave:  # open membership skips the project checks
        return AssigneeCheck(view=view)
    linked = ProjectTeam.select(ProjectTeam.project).where(
        (ProjectTeam.team == team.id) & ProjectTeam.project.in_(list(ctx.projects))
    )
    return AssigneeCheck(view=view, refused=_refused(ctx, {r.project_id for r in linked}, TEAM_WITHOUT_ACCESS))


def _check_user(ctx: UpdateContext, *, user: User) -> AssigneeCheck:
    member = OrganizationMember.get_or_none(
        (OrganizationMember.organization == ctx.organization.id) & (OrganizationMember.user == user.id)
    )

    def reachable() -> set[int]:
        assert member is not None
        query = (
            ProjectTeam.select(ProjectTeam.project)
            .join(OrganizationMemberTeam, on=(OrganizationMemberTeam.team == ProjectTeam.team))
            .where((OrganizationMemberTeam.member == member.id) & ProjectTeam.project.in_(list(ctx.projects)))
        )
        return {r.project_id for r in query}

    return _member_check(ctx, user=user, member=member, reachable=reachable)


def _member_check(
    ctx: UpdateContext, *, user: User, member: OrganizationMember | None, reachable: Callable[[], Collection[int]]
) -> AssigneeCheck:
    if member is None:
        raise _invalid("User is not a member of this organization")
    if not (member.is_active and user.is_active):
        raise _invalid("Cannot assign to a deactivated member")
    view = user_actor(user)
    if ctx.organization.allow_joinleave:
        return AssigneeCheck(view=view)
    allowed = set(reachable()) & set(ctx.projects)
    return AssigneeCheck(view=view, refused=_refused(ctx, allowed, NON_TEAM_MEMBER))


def _refused(ctx: UpdateContext, allowed: set[int], message: str) -> dict[int, str]:
    return {pid: message for pid in ctx.projects if pid not in allowed}


def check_project(check: AssigneeCheck, *, project: Project) -> None:
    """Raise this project's refusal, if any (Sentry validates once per project, §5 item 2)."""
    message = check.refused.get(project.id)
    if message is not None:
        raise _invalid(message)
