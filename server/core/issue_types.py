"""Issue types and categories with Sentry's numbers (`sentry.issues.grouptype`): Group.type
holds the type id; the category decides what the update path allows (§1, §3.11, §3.12)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class GroupCategory(IntEnum):
    """Sentry's GroupCategory values."""

    ERROR = 1
    PERFORMANCE = 2
    PROFILE = 3  # Sentry folds profiling issues into performance; kept for the number
    CRON = 4
    REPLAY = 5
    FEEDBACK = 6
    UPTIME = 7
    METRIC_ALERT = 8


@dataclass(frozen=True)
class IssueType:
    type_id: int
    slug: str
    category: GroupCategory | None  # None: an id in no block Sentry uses
    # False when a detector owns the status (metric issues resolve when the metric recovers).
    manual_resolution: bool = True


TYPES = (
    IssueType(1, "error", GroupCategory.ERROR),
    IssueType(1001, "performance_slow_db_query", GroupCategory.PERFORMANCE),
    IssueType(1006, "performance_n_plus_one_db_queries", GroupCategory.PERFORMANCE),
    IssueType(1010, "performance_n_plus_one_api_calls", GroupCategory.PERFORMANCE),
    IssueType(4001, "monitor_check_in_failure", GroupCategory.CRON),
    IssueType(6001, "feedback", GroupCategory.FEEDBACK),
    IssueType(7001, "uptime_domain_failure", GroupCategory.UPTIME),
    IssueType(8001, "metric_issue", GroupCategory.METRIC_ALERT, manual_resolution=False),
)
BY_ID = {t.type_id: t for t in TYPES}
BY_SLUG = {t.slug: t for t in TYPES}
# Sentry numbers type ids by category in blocks of a thousand (1xxx performance, 2xxx
# profiling, now reported as performance, 4xxx cron ...): the fallback for ids not listed.
_BLOCKS = {
    1: GroupCategory.PERFORMANCE,
    2: GroupCategory.PERFORMANCE,
    4: GroupCategory.CRON,
    5: GroupCategory.REPLAY,
    6: GroupCategory.FEEDBACK,
    7: GroupCategory.UPTIME,
    8: GroupCategory.METRIC_ALERT,
}


def issue_type(type_id: int) -> IssueType:
    """The registered type, else one derived from the id's block (resolvable by hand)."""
    known = BY_ID.get(type_id)
    if known is not None:
        return known
    return IssueType(type_id, f"type_{type_id}", _BLOCKS.get(type_id // 1000))


def is_error(type_id: int) -> bool:
    return issue_type(type_id).category == GroupCategory.ERROR


def manual_resolution_allowed(type_id: int) -> bool:
    return issue_type(type_id).manual_resolution


def category_name(type_id: int) -> str:
    """Sentry serializes the category as its lower-case name (`issueCategory`)."""
    category = issue_type(type_id).category
    return category.name.lower() if category is not None else "unknown"
