"""The reply's read (§4.2) as one fixed statement: the group, every row hanging off it, and its
newest activities with their users (as one JSON column), so the reply sees one snapshot.

Peewee rebuilds and recompiles a query's AST on every call (~0.2 ms a statement, most of a
GetGroup); these texts are built once per backend from the models' metadata. Cells are converted
with each field's `python_value`, exactly as peewee's own row wrappers do.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from peewee import JSONField

from server.core.enums import LinkRelationship, LinkType
from server.core.sqltext import Part, columns, fields, model_of, record_type, table, width
from server.storage.models import (
    Activity,
    Group,
    GroupAssignee,
    GroupBookmark,
    GroupLink,
    GroupResolution,
    GroupSeen,
    GroupShare,
    GroupSnooze,
    GroupSubscription,
    Project,
    Release,
    Team,
    User,
)

_USER = (User, ("id", "username", "email", "name"))
# The group and its project: whole rows (the core reads them), joined.
WHOLE: tuple[Part, ...] = (Group, Project)
WHOLE_WIDTH = sum(width(part) for part in WHOLE)


@dataclass(frozen=True)
class Family:
    """Rows hanging off the group that one scalar subquery reads as one JSON array (NULL when
    there is none): only the columns the reply shows, each part's primary key first (a NULL one:
    no such row; a part that reads no column is only joined through). `source` is its FROM and
    WHERE, `{alias}` each part's table, `g` the group, `:uid` the acting user's id.

    Joined to the group instead, these rows widened every level of the reply's join: PostgreSQL's
    executor start-up, which builds each level's tuple descriptor and projection column by
    column, was half of a GetGroup's backend instructions (BENCHMARKS.md, ninth session)."""

    parts: tuple[tuple[str, Part], ...]
    source: str

    def cell(self, *, postgres: bool) -> str:
        cells = ", ".join(filter(None, (_json_columns(alias, part, postgres=postgres) for alias, part in self.parts)))
        source = self.source.format(**{alias: f"{table(model_of(part))} {alias}" for alias, part in self.parts})
        return f"(SELECT {'json_build_array' if postgres else 'json_array'}({cells}) {source})"

    @functools.cached_property
    def read(self) -> tuple[Part, ...]:
        """The parts whose columns the array holds, in order."""
        return tuple(part for _, part in self.parts if width(part))


FAMILIES: tuple[Family, ...] = (
    Family((("sn", (GroupSnooze, ("id", "until", "count", "window", "user_count", "user_window", "state"))),
            ("su", _USER)),
           'FROM {sn} LEFT JOIN {su} ON su."id" = sn."actor_id" WHERE sn."group_id" = g."id"'),
    Family((("sh", (GroupShare, ("id", "uuid"))),), 'FROM {sh} WHERE sh."group_id" = g."id"'),
    Family((("ga", (GroupAssignee, ())), ("au", _USER), ("at", (Team, ("id", "slug")))),
           'FROM {ga} LEFT JOIN {au} ON au."id" = ga."user_id" LEFT JOIN {at} ON at."id" = ga."team_id"'
           ' WHERE ga."group_id" = g."id"'),
    Family((("gs", (GroupSubscription, ("id", "is_active", "reason"))),),
           'FROM {gs} WHERE gs."group_id" = g."id" AND gs."user_id" = :uid'),
    Family((("se", (GroupSeen, ("id", "last_seen"))),),
           'FROM {se} WHERE se."group_id" = g."id" AND se."user_id" = :uid'),
    Family((("gr", (GroupResolution, ("id", "type"))), ("ru", _USER), ("rl", (Release, ("id", "version")))),
           'FROM {gr} LEFT JOIN {ru} ON ru."id" = gr."actor_id" LEFT JOIN {rl} ON rl."id" = gr."release_id"'
           ' WHERE gr."group_id" = g."id"'),
)  # fmt: skip
# Whether the acting user bookmarked the group: a boolean, no row read.
BOOKMARKED = f'EXISTS (SELECT 1 FROM {table(GroupBookmark)} bm WHERE bm."group_id" = g."id" AND bm."user_id" = :uid)'
# A reply row: WHOLE's columns, BOOKMARKED, a cell per family; then the resolving commit (and,
# in group_sql's, the activities).
PARTS_WIDTH = WHOLE_WIDTH + 1 + len(FAMILIES)


def _json_columns(alias: str, part: Part, *, postgres: bool) -> str:
    """A part's columns inside a JSON array. SQLite's json_array would quote a JSON column's text
    as a string; json() passes the value it holds, as PostgreSQL's json_build_array does."""
    if postgres:
        return columns(alias, part)
    return ", ".join(
        f'json({alias}."{f.column_name}")' if isinstance(f, JSONField) else f'{alias}."{f.column_name}"'
        for f in fields(part)
    )


def activities_sql(*, postgres: bool, group: str) -> str:
    """A scalar subquery: the newest `:limit` activities of `group` (an SQL expression) as JSON."""
    when = "to_char(a.\"datetime\", 'YYYY-MM-DD HH24:MI:SS.US')" if postgres else 'a."datetime"'
    # json() in the outer select: SQLite drops a value's JSON subtype when it leaves a subquery.
    data = "x.data" if postgres else "json(x.data)"
    # The limit applies to the group's activities before the user join: newest first is then the
    # end of the (group_id, datetime, id) index, read backwards and stopped at the limit. With the
    # join inside, PostgreSQL joined and sorted every activity of the group to keep :limit of them.
    newest = (
        f'SELECT * FROM {table(Activity)} a WHERE a."group_id" = {group}'
        ' ORDER BY a."datetime" DESC, a."id" DESC LIMIT :limit'
    )
    inner = (
        f'SELECT a."id", a."type", a."ident", a."user_id", {when} AS dt, a."datetime" AS at, a."data" AS data,'
        f' u."id" AS uid, u."username", u."email", u."name" FROM ({newest}) a'
        f' LEFT JOIN {table(User)} u ON u."id" = a."user_id"'
    )
    cells = f'x."id", x."type", x."ident", x."user_id", x.dt, {data}, x.uid, x."username", x."email", x."name"'
    if postgres:
        return f'(SELECT json_agg(json_build_array({cells}) ORDER BY x.at DESC, x."id" DESC) FROM ({inner}) x)'
    return f"(SELECT json_group_array(json_array({cells})) FROM ({inner}) x)"


def columns_and_joins(*, uid: str, postgres: bool) -> str:
    """The reply's columns (PARTS_WIDTH of them, then the resolving commit) and its FROM, before a
    WHERE; `uid` is what the acting user's id is written as (a named or a positional placeholder)."""
    families = ", ".join(family.cell(postgres=postgres) for family in FAMILIES)
    select = f"{columns('g', Group)}, {columns('p', Project)}, {BOOKMARKED}, {families}".replace(":uid", uid)
    # The newest commit link that resolves the group (read only when no resolution row exists).
    link = (
        f'(SELECT l."linked_id" FROM {table(GroupLink)} l WHERE l."group_id" = g."id"'
        f' AND l."linked_type" = {int(LinkType.COMMIT)}'
        f' AND l."relationship" = {int(LinkRelationship.RESOLVES)}'
        ' ORDER BY l."datetime" DESC LIMIT 1)'
    )
    return f'{select}, {link} FROM {table(Group)} g JOIN {table(Project)} p ON p."id" = g."project_id"'


def group_sql(*, postgres: bool, where: str) -> str:
    """The reply's columns and then its activities (one JSON column) for the group `where` picks;
    named parameters :uid, :limit (render it)."""
    head, _, joins = columns_and_joins(uid=":uid", postgres=postgres).partition(f" FROM {table(Group)} g ")
    activities = activities_sql(postgres=postgres, group='g."id"')
    return f"SELECT {head}, {activities} FROM {table(Group)} g {joins} WHERE {where}"


def _when(text: str) -> Any:
    """Both backends write `YYYY-MM-DD HH:MM:SS[.ffffff]`: fromisoformat (C) reads it ~20x faster
    than peewee's strptime loop, which stays the fallback for anything else."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        parse: Any = Activity.datetime.python_value
        return parse(text)


class ActivityRow(NamedTuple):
    """An activity's cells as a reply reads them: no model instance, a reply reads up to 200."""

    id: int
    type: int
    ident: str | None
    user_id: int | None
    datetime: dt.datetime
    data: Any  # the JSON object, or None


# An activity's columns and its user's, as the readers of activities by rows select them
# (`activity_rows` reads them in this order).
ACTIVITY_PART: Part = (Activity, ("id", "group", "type", "ident", "user_id", "datetime", "data"))
ACTIVITY_USER_PART: Part = _USER
_USER_RECORD: Any = record_type(ACTIVITY_USER_PART)


def _user(users: dict[int, User], uid: int | None, username: str, email: str, name: str) -> User | None:
    """An activity's user (None without one), built once per user: a group's activities come
    from a few users. A record of the four columns read (sqltext.record_type)."""
    if uid is None:
        return None
    user = users.get(uid)
    if user is None:
        user = users[uid] = _USER_RECORD(uid, username, email, name)
    return user


def activity_rows(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, tuple[ActivityRow, User | None]]]:
    """(group id, (activity, its user)) per row of ACTIVITY_PART's then ACTIVITY_USER_PART's
    columns: tuples straight from the cells, one User per user. A page of ListGroups reads up to
    100 x 200 of them; a model instance per row, read again into a tuple, cost 4.2 us a row."""
    to_data: Any = Activity.data.python_value
    users: dict[int, User] = {}
    for aid, gid, kind, ident, user_id, at, data, uid, username, email, name in rows:
        user = _user(users, uid, username, email, name)
        when = at if isinstance(at, dt.datetime) else _when(at)
        yield gid, (ActivityRow(aid, kind, ident, user_id, when, None if data is None else to_data(data)), user)


def parse_activities(cell: Any) -> list[tuple[ActivityRow, User | None]]:
    """The JSON column (text on SQLite, parsed by psycopg on PostgreSQL), newest first."""
    if isinstance(cell, str):  # SQLite 3.40 has no ORDER BY inside an aggregate: sort here
        items = sorted(json.loads(cell), key=lambda i: (_when(i[4]), i[0]), reverse=True)
    else:
        items = cell or []
    rows: list[tuple[ActivityRow, User | None]] = []
    users: dict[int, User] = {}
    for aid, kind, ident, user_id, at, data, uid, username, email, name in items:
        user = _user(users, uid, username, email, name)
        rows.append((ActivityRow(aid, kind, ident, user_id, _when(at), data), user))
    return rows
