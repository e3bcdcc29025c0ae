"""Rows per multi-row INSERT: one call's worth (1000 groups) in a single statement.

1000 rows of at most 9 columns bind 9000 parameters, under SQLite's 32766 and PostgreSQL's
65535; so a bulk update of up to 1000 groups issues one INSERT per table, whatever its size.
"""

BATCH_ROWS = 1000
