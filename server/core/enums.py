"""Sentry's numeric enums (sentry-semantics §1), shared by the models and the core."""

from enum import IntEnum


class GroupStatus(IntEnum):
    UNRESOLVED = 0
    RESOLVED = 1
    IGNORED = 2
    PENDING_DELETION = 3
    DELETION_IN_PROGRESS = 4
    PENDING_MERGE = 5
    REPROCESSING = 6


class GroupSubStatus(IntEnum):
    UNTIL_ESCALATING = 1
    ESCALATING = 2
    ONGOING = 3
    UNTIL_CONDITION_MET = 4
    FOREVER = 5
    REGRESSED = 6
    NEW = 7


IGNORED_SUBSTATUSES = frozenset({1, 4, 5})
UNRESOLVED_SUBSTATUSES = frozenset({2, 3, 6, 7})
# Statuses that must carry no substatus.
NO_SUBSTATUS = frozenset({1, 3, 4, 5, 6})
HIDDEN_STATUSES = frozenset({3, 4, 5})


class PriorityLevel(IntEnum):
    LOW = 25
    MEDIUM = 50
    HIGH = 75


class ActivityType(IntEnum):
    SET_RESOLVED = 1
    SET_UNRESOLVED = 2
    SET_IGNORED = 3
    SET_PUBLIC = 4
    SET_PRIVATE = 5
    SET_REGRESSION = 6
    CREATE_ISSUE = 7
    NOTE = 8
    FIRST_SEEN = 9
    RELEASE = 10
    ASSIGNED = 11
    UNASSIGNED = 12
    SET_RESOLVED_IN_RELEASE = 13
    MERGE = 14
    SET_RESOLVED_BY_AGE = 15
    SET_RESOLVED_IN_COMMIT = 16
    DEPLOY = 17
    NEW_PROCESSING_ISSUES = 18
    UNMERGE_SOURCE = 19
    UNMERGE_DESTINATION = 20
    SET_RESOLVED_IN_PULL_REQUEST = 21
    REPROCESS = 22
    MARK_REVIEWED = 23
    AUTO_SET_ONGOING = 24
    SET_ESCALATING = 25
    SET_PRIORITY = 26
    DELETED_ATTACHMENT = 27
    REFERENCED_IN_COMMIT = 28


STATUS_CHANGE_ACTIVITIES = frozenset({1, 2, 3, 6, 13, 15, 16, 21, 25})


class GroupHistoryStatus(IntEnum):
    UNRESOLVED = 0
    RESOLVED = 1
    AUTO_RESOLVED = 2
    IGNORED = 3
    UNIGNORED = 4
    ASSIGNED = 5
    UNASSIGNED = 6
    REGRESSED = 7
    DELETED = 8
    DELETED_AND_DISCARDED = 9
    REVIEWED = 10
    SET_RESOLVED_IN_RELEASE = 11
    SET_RESOLVED_IN_COMMIT = 12
    SET_RESOLVED_IN_PULL_REQUEST = 13
    ESCALATING = 14
    ARCHIVED_UNTIL_ESCALATING = 15
    ARCHIVED_FOREVER = 16
    ARCHIVED_UNTIL_CONDITION_MET = 17
    # Sentry's PRIORITY_* numbers were not read (§6); these follow its table's order.
    PRIORITY_HIGH = 21
    PRIORITY_MEDIUM = 22
    PRIORITY_LOW = 23


# Substatus -> history label (§1.2); NEW has none and falls back to the activity mapping.
SUBSTATUS_HISTORY = {
    GroupSubStatus.UNTIL_ESCALATING: GroupHistoryStatus.ARCHIVED_UNTIL_ESCALATING,
    GroupSubStatus.ESCALATING: GroupHistoryStatus.ESCALATING,
    GroupSubStatus.ONGOING: GroupHistoryStatus.UNRESOLVED,
    GroupSubStatus.UNTIL_CONDITION_MET: GroupHistoryStatus.ARCHIVED_UNTIL_CONDITION_MET,
    GroupSubStatus.FOREVER: GroupHistoryStatus.ARCHIVED_FOREVER,
    GroupSubStatus.REGRESSED: GroupHistoryStatus.REGRESSED,
}

ACTIVITY_HISTORY = {
    ActivityType.SET_IGNORED: GroupHistoryStatus.IGNORED,
    ActivityType.SET_RESOLVED: GroupHistoryStatus.RESOLVED,
    ActivityType.SET_RESOLVED_IN_COMMIT: GroupHistoryStatus.SET_RESOLVED_IN_COMMIT,
    ActivityType.SET_RESOLVED_IN_RELEASE: GroupHistoryStatus.SET_RESOLVED_IN_RELEASE,
    ActivityType.SET_UNRESOLVED: GroupHistoryStatus.UNRESOLVED,
    ActivityType.AUTO_SET_ONGOING: GroupHistoryStatus.UNRESOLVED,
}


class SubscriptionReason(IntEnum):
    UNKNOWN = 0
    COMMENT = 1
    ASSIGNED = 2
    BOOKMARK = 3
    STATUS_CHANGE = 4
    DEPLOY_SETTING = 5
    MENTIONED = 6
    TEAM_MENTIONED = 7


SUBSCRIPTION_REASON_NAMES: dict[int, str] = {
    SubscriptionReason.COMMENT: "commented",
    SubscriptionReason.ASSIGNED: "assigned",
    SubscriptionReason.BOOKMARK: "bookmarked",
    SubscriptionReason.STATUS_CHANGE: "changed_status",
    SubscriptionReason.MENTIONED: "mentioned",
}


class InboxReason(IntEnum):
    NEW = 0
    UNIGNORED = 1
    REGRESSION = 2
    MANUAL = 3
    REPROCESSED = 4
    ESCALATING = 5
    ONGOING = 6


class ResolutionType(IntEnum):
    IN_RELEASE = 0
    IN_NEXT_RELEASE = 1


class ResolutionStatus(IntEnum):
    PENDING = 0
    RESOLVED = 1


class LinkType(IntEnum):
    UNKNOWN = 0
    COMMIT = 1
    PULL_REQUEST = 2
    ISSUE = 3


class LinkRelationship(IntEnum):
    UNKNOWN = 0
    RESOLVES = 1
    REFERENCES = 2


ERROR_CATEGORY_TYPES = frozenset({1})  # issue type ids whose category is "error"
LEVEL_NAMES = {0: "sample", 10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}
