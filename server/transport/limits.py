"""Edge validation: one table of limits for every field of every request, checked right after the
request is parsed and before any database work. A violation is INVALID_ARGUMENT with a
google.rpc.BadRequest naming each bad field (e.g. "patch.status_details.in_release").

Adding an RPC or a field: add ONE line per field to FIELDS, under the full name of the message
that declares it (a nested message gets its own entry and NESTED where it is used), e.g.

    "issues.v1.ListGroupsRequest": {"organization_id": ID, "cursor": PAGE_TOKEN, "limit": Count(1, 1000)},

tests/security/test_edge_limits.py fails until every field of every IssueService request (and of
every message nested in one) has a line here. A field without a line still gets the baseline
(no NUL, at most DEFAULT_TEXT characters, DEFAULT_ITEMS items), never nothing. The README's
limits table lists the same numbers.

Rules: ID (any int64; existence is the core's NOT_FOUND), AMOUNT (a number whose range the core
checks with its own messages, e.g. Sentry's), FLAG, ENUM (a value the enum defines), Text(n) (at most n
characters, no NUL, optionally only the characters of a pattern), Count(low, high), Items(n,
item) (a repeated field of at most n items, each checked by item), NESTED, TIMESTAMP.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Violations = list[tuple[str, str]]
NUL = "Null characters are not allowed."  # DRF's ProhibitNullCharactersValidator message
DEFAULT_TEXT = 1024
DEFAULT_ITEMS = 1000
MAX_IDS = 1000  # Sentry's BULK_MUTATION_LIMIT
MAX_PROJECTS = 1000  # far below PostgreSQL's 65,535 bound parameters per statement
MAX_ENVIRONMENTS = 100
# Dates a request may carry: every moment a day away from the calendar's ends stays computable.
MIN_DATE = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_DATE = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


class Rule(Protocol):
    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None: ...


class _Any:
    """A value protobuf already bounds (int64, bool); the core judges its meaning."""

    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        return None


@dataclass(frozen=True)
class Count:
    low: int
    high: int

    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        if value < self.low:
            out.append((path, f"Ensure this value is greater than or equal to {self.low}."))
        elif value > self.high:
            out.append((path, f"Ensure this value is less than or equal to {self.high}."))


class _Enum:
    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        if field.enum_type is not None and value not in field.enum_type.values_by_number:
            out.append((path, f'"{value}" is not a valid choice.'))


@dataclass(frozen=True)
class Text:
    max_len: int
    allowed: str = ""  # a regex character class the whole value must consist of; "" = any
    allowed_text: str = ""  # the violation message when a character is outside `allowed`

    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        if "\x00" in value:
            out.append((path, NUL))
        elif len(value) > self.max_len:
            out.append((path, f"Ensure this field has no more than {self.max_len} characters."))
        elif self.allowed and not re.fullmatch(f"[{self.allowed}]*", value):
            out.append((path, self.allowed_text))


@dataclass(frozen=True)
class Items:
    max_items: int
    item: Rule

    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        if len(value) > self.max_items:
            out.append((path, f"Ensure this field has no more than {self.max_items} elements."))
            return  # one violation for the list, not thousands for its items
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]", field, out)


class _Nested:
    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        _walk(value, path + ".", out)


class _Timestamp:
    def check(self, value: Any, path: str, field: FieldDescriptor, out: Violations) -> None:
        low, high = int(MIN_DATE.timestamp()), int(MAX_DATE.timestamp())
        if not low <= value.seconds <= high or not 0 <= value.nanos < 10**9:
            out.append((path, f"Ensure this date is between {MIN_DATE:%Y-%m-%d} and {MAX_DATE:%Y-%m-%d}."))


ID = AMOUNT = FLAG = _Any()
ENUM = _Enum()
NESTED = _Nested()
TIMESTAMP = _Timestamp()
PRINTABLE = Text(128, "!-~", "Only printable ASCII characters without spaces are allowed.")
PAGE_TOKEN = Text(2048, "A-Za-z0-9_=-", "Invalid cursor parameter.")  # base64url, Sentry's message
ENVIRONMENT = Text(64, "^\x00-\x1f\x7f", "Control characters are not allowed.")

FIELDS: dict[str, dict[str, Rule]] = {
    "issues.v1.GetGroupRequest": {"organization_id": ID, "group_id": ID},
    "issues.v1.UpdateGroupRequest": {
        "organization_id": ID, "group_id": ID, "patch": NESTED, "request_id": PRINTABLE, "etag": PRINTABLE,
    },
    "issues.v1.ListGroupsRequest": {
        "organization_id": ID, "project_ids": Items(MAX_PROJECTS, ID), "query": Text(2000),
        "environments": Items(MAX_ENVIRONMENTS, ENVIRONMENT), "sort": ENUM, "page_size": AMOUNT,
        "page_token": PAGE_TOKEN, "include_activities": FLAG,
    },
    "issues.v1.BulkUpdateGroupsRequest": {
        "organization_id": ID, "project_ids": Items(MAX_PROJECTS, ID), "group_ids": Items(MAX_IDS, ID),
        "query": Text(2000), "environments": Items(MAX_ENVIRONMENTS, ENVIRONMENT),
        "sort": ENUM, "page_token": PAGE_TOKEN, "patch": NESTED, "request_id": PRINTABLE, "validate_only": FLAG,
    },
    "issues.v1.GroupPatch": {
        "status": ENUM, "substatus": ENUM, "status_details": NESTED, "assigned_to": NESTED, "has_seen": FLAG,
        "is_bookmarked": FLAG, "is_subscribed": FLAG, "is_public": FLAG, "merge": FLAG, "discard": FLAG,
        "priority": ENUM, "inbox": FLAG, "ignore_duration": AMOUNT, "ignore_count": AMOUNT,
        "ignore_window": AMOUNT, "ignore_user_count": AMOUNT, "ignore_user_window": AMOUNT,
        "snooze_duration": AMOUNT, "integration": Text(64), "merge_primary_group_id": ID,
    },
    "issues.v1.StatusDetailsUpdate": {
        "in_release": Text(250), "in_next_release": FLAG, "in_commit": NESTED, "ignore_duration": AMOUNT,
        "ignore_count": AMOUNT, "ignore_window": AMOUNT, "ignore_user_count": AMOUNT, "ignore_user_window": AMOUNT,
    },
    "issues.v1.InCommit": {"commit": Text(64), "repository": Text(200)},
    "issues.v1.WatchIssueEventsRequest": {
        "organization_id": ID, "project_ids": Items(MAX_PROJECTS, ID), "group_ids": Items(MAX_IDS, ID),
        "kinds": Items(50, ENUM), "after_event_id": AMOUNT, "max_events_per_message": AMOUNT,
    },
    "issues.v1.AssigneeUpdate": {
        "user_id": ID, "team_id": ID, "username": Text(128), "email": Text(254), "unassign": FLAG,
        "actor": Text(140),
    },
}  # fmt: skip


def _baseline(field: FieldDescriptor) -> Rule:
    """The rule of a field nobody declared: still bounded, never unchecked."""
    if field.message_type is not None:
        item: Rule = TIMESTAMP if field.message_type.full_name == "google.protobuf.Timestamp" else NESTED
    elif field.type == FieldDescriptor.TYPE_STRING:
        item = Text(DEFAULT_TEXT)
    elif field.enum_type is not None:
        item = ENUM
    else:
        item = ID
    return Items(DEFAULT_ITEMS, item) if field.is_repeated else item


def _walk(message: Message, prefix: str, out: Violations) -> None:
    table = FIELDS.get(message.DESCRIPTOR.full_name, {})
    for field, value in message.ListFields():  # unset fields hold defaults, which always pass
        rule = table.get(field.name) or _baseline(field)
        rule.check(value, prefix + field.name, field, out)


def violations(request: Message) -> Violations:
    """Every limit the request breaks, as (field path, description); empty when it is fine."""
    out: Violations = []
    _walk(request, "", out)
    return out
