"""Peewee models for every table the update path reads or writes (sentry-semantics §1)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    SmallIntegerField,
    TextField,
)

db = DatabaseProxy()


_EPOCH = dt.datetime(1970, 1, 1)


def utcnow() -> dt.datetime:
    """Naive UTC: both backends store timestamps without a zone, always in UTC. By arithmetic
    from the clock's microseconds (floored, as datetime.now floors them): the zone-aware now()
    then .replace(tzinfo=None) cost ~12k instructions, most of it replace's keyword parsing,
    and a call reads the time more than once."""
    return _EPOCH + dt.timedelta(0, 0, time.time_ns() // 1000)


class BaseModel(Model):
    id = BigAutoField()

    class Meta:
        database = db
        legacy_table_names = False


class Organization(BaseModel):
    slug = CharField(max_length=64, unique=True)
    name = CharField(max_length=128)
    # Open membership (Sentry's allow_joinleave): any member may act on any project.
    allow_joinleave = BooleanField(default=False)
    # Sentry's `sentry:events_member_admin`: members get event:admin unless it is off.
    events_member_admin = BooleanField(default=True)
    # Feature flags by name, e.g. ["projects:discard-groups"].
    features = JSONField(default=list)


class Project(BaseModel):
    organization = ForeignKeyField(Organization, backref="projects", on_delete="CASCADE")
    organization_id: int
    slug = CharField(max_length=64)
    name = CharField(max_length=128)
    platform = CharField(max_length=64, null=True)
    # Hours after which an unresolved issue not seen reads as resolved; null = never.
    auto_resolve_age_hours = IntegerField(null=True)

    class Meta:
        indexes = ((("organization", "slug"), True),)


class Team(BaseModel):
    organization = ForeignKeyField(Organization, backref="teams", on_delete="CASCADE")
    organization_id: int
    slug = CharField(max_length=64)
    name = CharField(max_length=128)

    class Meta:
        indexes = ((("organization", "slug"), True),)


class ProjectTeam(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    team = ForeignKeyField(Team, on_delete="CASCADE")
    team_id: int

    class Meta:
        indexes = ((("project", "team"), True),)


class User(BaseModel):
    username = CharField(max_length=128, unique=True)
    email = CharField(max_length=128, default="")
    name = CharField(max_length=128, default="")
    is_active = BooleanField(default=True)


class OrganizationMember(BaseModel):
    organization = ForeignKeyField(Organization, backref="members", on_delete="CASCADE")
    organization_id: int
    user = ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    # member, admin, manager, owner or billing (Sentry's default org roles).
    role = CharField(max_length=32, default="member")
    # False for a deactivated membership (Sentry: user_is_active / invite state).
    is_active = BooleanField(default=True)

    class Meta:
        indexes = ((("organization", "user"), True),)


class OrganizationMemberTeam(BaseModel):
    member = ForeignKeyField(OrganizationMember, on_delete="CASCADE")
    member_id: int
    team = ForeignKeyField(Team, on_delete="CASCADE")
    team_id: int

    class Meta:
        indexes = ((("member", "team"), True),)


class UserOption(BaseModel):
    user = ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    key = CharField(max_length=64)
    value = TextField()

    class Meta:
        indexes = ((("user", "key"), True),)


class Release(BaseModel):
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    version = CharField(max_length=250)
    date_added = DateTimeField(default=utcnow)
    date_released = DateTimeField(null=True)
    status = SmallIntegerField(default=0, null=True)  # OPEN 0, ARCHIVED 1
    package = CharField(max_length=250, null=True)
    major = BigIntegerField(null=True)
    minor = BigIntegerField(null=True)
    patch = BigIntegerField(null=True)
    revision = BigIntegerField(null=True)
    prerelease = CharField(max_length=250, null=True)
    build_code = CharField(max_length=250, null=True)
    build_number = BigIntegerField(null=True)

    class Meta:
        indexes = ((("organization", "version"), True),)


class ReleaseProject(BaseModel):
    release = ForeignKeyField(Release, on_delete="CASCADE")
    release_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int

    class Meta:
        indexes = ((("project", "release"), True),)


class Repository(BaseModel):
    """Unique per organization + provider + external id, as in Sentry; names may repeat."""

    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    name = CharField(max_length=200)
    # e.g. "integrations:github"; null for repositories added by hand (Sentry's default).
    provider = CharField(max_length=64, null=True)
    # The provider's id of the repository; null rows never collide (NULLs are distinct).
    external_id = CharField(max_length=64, null=True)

    class Meta:
        indexes = (
            (("organization", "name"), False),
            (("organization", "provider", "external_id"), True),
        )


class Commit(BaseModel):
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    repository = ForeignKeyField(Repository, on_delete="CASCADE")
    repository_id: int
    key = CharField(max_length=64)
    message = TextField(null=True)

    class Meta:
        indexes = ((("repository", "key"), True),)


class ReleaseCommit(BaseModel):
    release = ForeignKeyField(Release, on_delete="CASCADE")
    release_id: int
    commit = ForeignKeyField(Commit, on_delete="CASCADE")
    commit_id: int
    order = IntegerField(default=0)

    class Meta:
        indexes = ((("release", "commit"), True),)


class Environment(BaseModel):
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    name = CharField(max_length=64)

    class Meta:
        indexes = ((("organization", "name"), True),)


class Group(BaseModel):
    project = ForeignKeyField(Project, backref="groups", on_delete="CASCADE")
    project_id: int
    status = SmallIntegerField(default=0, index=True)
    substatus = IntegerField(null=True)
    resolved_at = DateTimeField(null=True)
    active_at = DateTimeField(null=True)
    first_seen = DateTimeField(default=utcnow, index=True)
    last_seen = DateTimeField(default=utcnow, index=True)
    times_seen = BigIntegerField(default=1, constraints=[Check("times_seen >= 0")])
    user_count = BigIntegerField(default=0)
    priority = SmallIntegerField(null=True)
    priority_locked_at = DateTimeField(null=True)
    type = IntegerField(default=1)
    short_id = BigIntegerField(null=True)
    num_comments = IntegerField(default=0)
    level = SmallIntegerField(default=40)
    message = TextField(default="")
    title = TextField(default="")
    culprit = CharField(max_length=200, null=True)
    data = JSONField(null=True)
    platform = CharField(max_length=64, null=True)
    logger = CharField(max_length=64, default="")
    first_release = ForeignKeyField(Release, null=True, on_delete="SET NULL")
    first_release_id: int | None
    # Bumped by every update that selects the group; the etag is derived from it.
    version = BigIntegerField(default=1)


class GroupEnvironment(BaseModel):
    group = ForeignKeyField(Group, on_delete="CASCADE")
    group_id: int
    environment = ForeignKeyField(Environment, on_delete="CASCADE")
    environment_id: int

    class Meta:
        indexes = ((("group", "environment"), True),)


class GroupRelease(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    group = ForeignKeyField(Group, on_delete="CASCADE")
    group_id: int
    release = ForeignKeyField(Release, on_delete="CASCADE")
    release_id: int
    environment = CharField(max_length=64, default="")
    first_seen = DateTimeField(default=utcnow)
    last_seen = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("group", "release", "environment"), True),)


class GroupResolution(BaseModel):
    group = ForeignKeyField(Group, unique=True, on_delete="CASCADE")
    group_id: int
    release = ForeignKeyField(Release, on_delete="CASCADE")
    release_id: int
    current_release_version = CharField(max_length=250, null=True)
    type = SmallIntegerField(null=True)  # in_release 0, in_next_release 1
    actor_id = BigIntegerField(null=True)
    datetime = DateTimeField(default=utcnow)
    status = SmallIntegerField(default=0)  # pending 0, resolved 1


class GroupSnooze(BaseModel):
    group = ForeignKeyField(Group, unique=True, on_delete="CASCADE")
    group_id: int
    until = DateTimeField(null=True)
    count = BigIntegerField(null=True, constraints=[Check("count >= 0")])
    window = IntegerField(null=True)
    user_count = BigIntegerField(null=True, constraints=[Check("user_count >= 0")])
    user_window = IntegerField(null=True)
    state = JSONField(null=True)
    actor_id = BigIntegerField(null=True)


class GroupAssignee(BaseModel):
    group = ForeignKeyField(Group, unique=True, on_delete="CASCADE")
    group_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    user_id: int | None
    team = ForeignKeyField(Team, null=True, on_delete="CASCADE")
    team_id: int | None
    date_added = DateTimeField(default=utcnow)

    class Meta:
        table_name = "group_assignee"
        constraints = [Check("(user_id IS NULL) <> (team_id IS NULL)")]


class GroupSubscription(BaseModel):
    # Found through the unique (group, user) and (group, team) indexes below; no index of its own
    # (server/storage/migrate_indexes.py).
    group = ForeignKeyField(Group, on_delete="CASCADE", index=False)
    group_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    user_id: int | None
    team = ForeignKeyField(Team, null=True, on_delete="CASCADE")
    team_id: int | None
    is_active = BooleanField(default=True)
    reason = IntegerField(default=0)
    date_added = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("group", "user"), True), (("group", "team"), True))
        constraints = [Check("(user_id IS NULL) <> (team_id IS NULL)")]


class GroupBookmark(BaseModel):
    # Found through the unique (project, user, group) index below (server/storage/migrate_indexes.py).
    project = ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    group = ForeignKeyField(Group, on_delete="CASCADE")
    group_id: int
    user = ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    date_added = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("project", "user", "group"), True),)


class GroupSeen(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    group = ForeignKeyField(Group, on_delete="CASCADE")
    group_id: int
    # Found through the unique (user, group) index below (server/storage/migrate_indexes.py).
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    user_id: int
    last_seen = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "group"), True),)


class GroupShare(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    group = ForeignKeyField(Group, unique=True, on_delete="CASCADE")
    group_id: int
    uuid = CharField(max_length=32, unique=True)
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    user_id: int | None
    date_added = DateTimeField(default=utcnow)


class GroupInbox(BaseModel):
    group = ForeignKeyField(Group, unique=True, on_delete="CASCADE")
    group_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    reason = SmallIntegerField(default=0)
    reason_details = JSONField(null=True)
    date_added = DateTimeField(default=utcnow)


class GroupTombstone(BaseModel):
    previous_group_id = BigIntegerField(unique=True)
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    level = SmallIntegerField(default=40)
    message = TextField(default="")
    culprit = CharField(max_length=200, null=True)
    data = JSONField(null=True)
    actor_id = BigIntegerField(null=True)


class GroupHash(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    hash = CharField(max_length=32)
    group = ForeignKeyField(Group, null=True, on_delete="SET NULL")
    group_id: int | None
    group_tombstone_id = BigIntegerField(null=True)

    class Meta:
        indexes = ((("project", "hash"), True),)


class GroupLink(BaseModel):
    group = ForeignKeyField(Group, on_delete="CASCADE")
    group_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    linked_type = SmallIntegerField(default=1)  # unknown 0, commit 1, pull_request 2, issue 3
    linked_id = BigIntegerField()
    relationship = SmallIntegerField(default=2)  # unknown 0, resolves 1, references 2
    data = JSONField(null=True)
    datetime = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("group", "linked_type", "linked_id"), True),)


class GroupRedirect(BaseModel):
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    group_id = BigIntegerField(index=True)
    previous_group_id = BigIntegerField(unique=True)


class Activity(BaseModel):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    # Indexed with datetime and id below (server/storage/migrate_indexes.py says why).
    group = ForeignKeyField(Group, null=True, on_delete="CASCADE", index=False)
    group_id: int | None
    type = IntegerField()
    ident = CharField(max_length=64, null=True)
    user_id = BigIntegerField(null=True)
    datetime = DateTimeField(default=utcnow)
    data = JSONField(null=True)

    class Meta:
        indexes = ((("group", "datetime", "id"), False),)


class GroupHistory(BaseModel):
    organization = ForeignKeyField(Organization, on_delete="CASCADE")
    organization_id: int
    # Indexed with date_added and id below (server/storage/migrate_indexes.py says why).
    group = ForeignKeyField(Group, on_delete="CASCADE", index=False)
    group_id: int
    project = ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    release = ForeignKeyField(Release, null=True, on_delete="SET NULL")
    release_id: int | None
    user_id = BigIntegerField(null=True)
    team_id = BigIntegerField(null=True)
    status = IntegerField()
    prev_history = ForeignKeyField("self", null=True, on_delete="SET NULL")
    prev_history_id: int | None
    prev_history_date = DateTimeField(null=True)
    date_added = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("group", "date_added", "id"), False),)


class IdempotencyRecord(BaseModel):
    """A stored reply for a request id, so retries across processes return it unchanged."""

    scope = CharField(max_length=300, unique=True)  # token name + method + request id
    body_hash = CharField(max_length=64)
    response = TextField()  # base64 of the serialized reply
    created_at = DateTimeField(default=utcnow, index=True)


class OutboxEvent(BaseModel):
    """Notification events, written in the update's transaction and delivered after commit.

    `seq` is the public event id: a commit sequence stamped after commit (server/events), so
    it follows commit order where the insert id does not.
    """

    kind = CharField(max_length=64)
    group_id = BigIntegerField(null=True)
    payload = JSONField(null=True)
    created_at = DateTimeField(default=utcnow)
    delivered_at = DateTimeField(null=True, index=True)
    organization_id = BigIntegerField(null=True)
    project_id = BigIntegerField(null=True)
    actor_id = BigIntegerField(null=True)  # the acting user; null for a system caller
    request_id = CharField(max_length=128, null=True)
    seq = BigIntegerField(null=True, unique=True)


class EventSequence(BaseModel):
    """One row: the next commit sequence value, so pruning never lets a value come back."""

    next_seq = BigIntegerField(default=1)
    pruned_through = BigIntegerField(default=0)  # every seq up to this one may be gone


class RelayLease(BaseModel):
    """SQLite's relay lease (PostgreSQL uses a session advisory lock): one publisher at a time."""

    name = CharField(max_length=64, unique=True)
    holder = CharField(max_length=128)
    expires_at = DateTimeField()


class SchemaVersion(BaseModel):
    version = IntegerField()
    applied_at = DateTimeField(default=utcnow)


ALL_MODELS: tuple[type[Model], ...] = (
    Organization,
    Project,
    Team,
    ProjectTeam,
    User,
    OrganizationMember,
    OrganizationMemberTeam,
    UserOption,
    Release,
    ReleaseProject,
    Repository,
    Commit,
    ReleaseCommit,
    Environment,
    Group,
    GroupEnvironment,
    GroupRelease,
    GroupResolution,
    GroupSnooze,
    GroupAssignee,
    GroupSubscription,
    GroupBookmark,
    GroupSeen,
    GroupShare,
    GroupInbox,
    GroupTombstone,
    GroupHash,
    GroupLink,
    GroupRedirect,
    Activity,
    GroupHistory,
    IdempotencyRecord,
    OutboxEvent,
    EventSequence,
    RelayLease,
    SchemaVersion,
)


def model_fields(model: type[Model]) -> dict[str, Any]:
    return dict(model._meta.fields)
