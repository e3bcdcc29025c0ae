"""Schema creation and upgrades, run explicitly by `python -m server migrate` (never on import)."""

from __future__ import annotations

from collections.abc import Callable

from server.storage import migrate_events, migrate_indexes
from server.storage.models import ALL_MODELS, SchemaVersion, db
from server.storage.upgrade_repository import upgrade_repository_identity

# Each entry upgrades the schema from version i to i+1; version 1 creates every table.
MIGRATIONS: list[Callable[[], None]] = [
    lambda: db.create_tables(ALL_MODELS, safe=True),
    upgrade_repository_identity,
    migrate_events.upgrade,  # issue 11: event stream columns, sequence, lease
    migrate_events.drop_notify_trigger,  # wake-ups after commit instead of inside it
    migrate_indexes.newest_first,  # a group's newest activities and history without a sort
    migrate_indexes.drop_covered,  # no index that a unique index already covers
    migrate_indexes.drop_redundant_keys,  # PostgreSQL: no key the group's key already implies
]


def current_version() -> int:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate() -> tuple[int, int]:
    """Apply pending migrations in one transaction; returns (from, to)."""
    with db.connection_context(), db.atomic():
        start = current_version()
        for version in range(start, len(MIGRATIONS)):
            MIGRATIONS[version]()
            SchemaVersion.create(version=version + 1)
        return start, len(MIGRATIONS)
