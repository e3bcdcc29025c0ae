"""Schema upgrade: repositories unique per organization + provider + external id (Sentry's
rule), no longer by name; idempotent, so it runs safely on a database created from the models."""

from __future__ import annotations

from server.storage.models import db

TABLE = "repository"
NAME_INDEX = "repository_organization_id_name"
IDENTITY_INDEX = "repository_organization_id_provider_external_id"


def upgrade_repository_identity() -> None:
    columns = {c.name for c in db.get_columns(TABLE)}
    for column in ("provider", "external_id"):
        if column not in columns:
            db.execute_sql(f"ALTER TABLE {TABLE} ADD COLUMN {column} VARCHAR(64)")
    unique_names = [i for i in db.get_indexes(TABLE) if i.name == NAME_INDEX and i.unique]
    if unique_names:  # two repositories may now share a name
        db.execute_sql(f"DROP INDEX {NAME_INDEX}")
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {NAME_INDEX} ON {TABLE} (organization_id, name)")
    db.execute_sql(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {IDENTITY_INDEX} ON {TABLE} (organization_id, provider, external_id)"
    )
