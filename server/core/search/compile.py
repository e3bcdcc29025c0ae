"""Compile a SearchFilter to SQL conditions on Group: EXISTS subqueries, never a Python filter."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from peewee import SQL, ColumnBase, fn

from server.core.enums import ERROR_CATEGORY_TYPES, HIDDEN_STATUSES
from server.core.search.bounds import ascii_int, check_date, check_ids, check_int, check_text, check_values
from server.core.search.filters import (
    Category,
    Compare,
    Not,
    OneOf,
    SearchFilter,
    Term,
    Text,
)
from server.storage.models import (
    Environment,
    GroupAssignee,
    GroupBookmark,
    GroupEnvironment,
    GroupInbox,
    GroupLink,
    GroupRelease,
    OrganizationMember,
    OrganizationMemberTeam,
    Project,
    Release,
    Team,
    User,
)
from server.storage.models import Group as G

OPS: dict[str, Callable[[Any, Any], ColumnBase]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# Issue type id ranges per category (Sentry's GroupType ids: 1xxx performance, 4xxx cron, ...).
CATEGORY_TYPES = {
    "performance": (1000, 2999),
    "cron": (4000, 4999),
    "replay": (5000, 5999),
    "feedback": (6000, 6999),
    "uptime": (7000, 7999),
}
FALSE = SQL("1 = 0")
MAX_PROJECTS = 1000  # ids bound into one statement: PostgreSQL takes at most 65,535 parameters
MAX_ENVIRONMENTS = 100


@dataclass(frozen=True)
class Scope:
    """Who searches where: the organization, the requested projects and the acting user."""

    organization_id: int
    actor_id: int | None = None
    project_ids: tuple[int, ...] = ()
    environment_ids: tuple[int, ...] = ()


def priority_key() -> ColumnBase:
    """Priority as a sortable, never-null key: issues without one rank below low (25)."""
    return fn.COALESCE(G.priority, 0)


def conditions(search: SearchFilter, *, scope: Scope) -> list[ColumnBase]:
    """Every condition a selected group must meet, scope and visibility included."""
    projects = Project.select(Project.id).where(Project.organization == scope.organization_id)
    check_ids(scope.project_ids, field="project_ids", limit=MAX_PROJECTS)
    check_ids(scope.environment_ids, field="environments", limit=MAX_ENVIRONMENTS)
    if scope.project_ids:
        projects = projects.where(Project.id.in_(list(scope.project_ids)))
    # Pending deletion or merge: never selected by a search (Sentry hides them too).
    out: list[ColumnBase] = [G.project.in_(projects), G.status.not_in(sorted(HIDDEN_STATUSES))]
    if scope.environment_ids:
        out.append(_exists(GroupEnvironment, GroupEnvironment.environment.in_(list(scope.environment_ids))))
    # A term repeated is the same condition (the terms are ANDed): compiled once. PostgreSQL
    # planned 100 copies of one EXISTS term for over 30 s (an outside check, 2026-12-02).
    return out + [compile_term(term, scope=scope) for term in dict.fromkeys(search.terms)]


def compile_term(term: Term, *, scope: Scope) -> ColumnBase:
    if isinstance(term, Not):
        return cast(ColumnBase, ~compile_term(term.term, scope=scope))
    if isinstance(term, Compare):
        return _compare(term)
    if isinstance(term, OneOf):
        column: ColumnBase = priority_key() if term.column == "priority" else getattr(G, term.column)
        return column.in_(list(term.values))
    if isinstance(term, Category):
        return _any([_category(name) for name in term.names])
    if isinstance(term, Text):
        text = check_text(term.text)
        return G.title.contains(text) | G.culprit.contains(text) | G.message.contains(text)
    return RELATIONS[term.relation](check_values(term.values), scope)


def _compare(term: Compare) -> ColumnBase:
    column: ColumnBase = getattr(G, term.column)
    value = check_date(term.value) if isinstance(term.value, dt.datetime) else check_int(term.value)
    if term.op == "day":
        assert isinstance(value, dt.datetime)
        return (column >= value) & (column < value + dt.timedelta(days=1))
    return OPS[term.op](column, value)


def _category(name: str) -> ColumnBase:
    if name == "error":
        return G.type.in_(sorted(ERROR_CATEGORY_TYPES))
    low, high = CATEGORY_TYPES[name]
    return G.type.between(low, high)


def _any(exprs: list[ColumnBase]) -> ColumnBase:
    return balanced(exprs, operator.or_) if exprs else FALSE


def all_of(exprs: list[ColumnBase]) -> ColumnBase:
    """Every condition, as one expression nested log2(n) deep (where(*exprs) chains them)."""
    return balanced(exprs, operator.and_)


def balanced(exprs: list[ColumnBase], join: Callable[[Any, Any], Any]) -> ColumnBase:
    """exprs joined as a balanced tree: ((a AND b) AND (c AND d)), not (((a AND b) AND c) AND d).
    A chain nests one level per term, and SQLite's parser has a fixed stack: a query of 39 to
    75 terms (of the 100 allowed) overflowed it, "parser stack overflow" (fuzzing, 2026-12-02)."""
    if len(exprs) == 1:
        return exprs[0]
    middle = len(exprs) // 2
    return cast(ColumnBase, join(balanced(exprs[:middle], join), balanced(exprs[middle:], join)))


def _exists(model: Any, condition: ColumnBase | None = None) -> ColumnBase:
    """EXISTS a row of model for this group (correlated on model.group)."""
    query = model.select(SQL("1")).where(model.group == G.id)
    if condition is not None:
        query = query.where(condition)
    return fn.EXISTS(query)


def _users(values: tuple[str, ...], scope: Scope) -> Any:
    """User ids named by "me", a numeric id, a username or an e-mail; None when none can match."""
    named = [v for v in values if v != "me"]
    exprs: list[ColumnBase] = [(User.username == v) | (User.email == v) for v in named]
    exprs += [User.id == number for v in named if (number := ascii_int(v)) is not None]
    if "me" in values and scope.actor_id is not None:
        exprs.append(User.id == scope.actor_id)
    return User.select(User.id).where(_any(exprs)) if exprs else None


def _teams(values: tuple[str, ...], scope: Scope) -> Any:
    slugs = [v[1:] for v in values if v.startswith("#")]
    teams = Team.select(Team.id).where(Team.organization == scope.organization_id)
    by_slug = teams.where(Team.slug.in_(slugs))
    if "my_teams" not in values or scope.actor_id is None:
        return by_slug if slugs else None
    mine = (
        OrganizationMemberTeam.select(OrganizationMemberTeam.team)
        .join(OrganizationMember)
        .where((OrganizationMember.user == scope.actor_id) & (OrganizationMember.organization == scope.organization_id))
    )
    return teams.where(Team.slug.in_(slugs) | Team.id.in_(mine))


def _assignee(values: tuple[str, ...], scope: Scope) -> ColumnBase:
    if not values:
        return _exists(GroupAssignee)
    user_values = tuple(v for v in values if v not in ("none", "my_teams") and not v.startswith("#"))
    users, teams = _users(user_values, scope), _teams(values, scope)
    exprs = [~_exists(GroupAssignee)] if "none" in values else []
    if users is not None:
        exprs.append(_exists(GroupAssignee, GroupAssignee.user.in_(users)))
    if teams is not None:
        exprs.append(_exists(GroupAssignee, GroupAssignee.team.in_(teams)))
    return _any(exprs)


def _bookmark(values: tuple[str, ...], scope: Scope) -> ColumnBase:
    users = _users(values, scope) if values else None
    if values and users is None:
        return FALSE  # bookmarks:me without an acting user
    return _exists(GroupBookmark, GroupBookmark.user.in_(users) if users is not None else None)


def _release(values: tuple[str, ...], scope: Scope) -> ColumnBase:
    releases = Release.select(Release.id).where(
        (Release.organization == scope.organization_id) & Release.version.in_(list(values))
    )
    return _exists(GroupRelease, GroupRelease.release.in_(releases))


def _environment(values: tuple[str, ...], scope: Scope) -> ColumnBase:
    environments = Environment.select(Environment.id).where(
        (Environment.organization == scope.organization_id) & Environment.name.in_(list(values))
    )
    return _exists(GroupEnvironment, GroupEnvironment.environment.in_(environments))


RELATIONS: dict[str, Callable[[tuple[str, ...], Scope], ColumnBase]] = {
    "assignee": _assignee,
    "bookmark": _bookmark,
    "release": _release,
    "environment": _environment,
    "inbox": lambda values, scope: _exists(GroupInbox),
    "link": lambda values, scope: _exists(GroupLink),
}
