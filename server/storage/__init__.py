"""Storage: database from URL, Peewee models, migrations, fixtures."""
