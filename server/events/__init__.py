"""The outbox as an event stream: commit sequence, per-process feed, watchers (issue 11)."""
