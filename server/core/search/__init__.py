"""Sentry's issue search: parse a query once into a typed filter, compile it to one SQL query."""
