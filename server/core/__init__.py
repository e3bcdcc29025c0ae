"""The update core: Sentry's issue update semantics on Peewee, with no transport imports."""
