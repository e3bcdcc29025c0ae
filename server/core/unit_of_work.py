"""One connection and one transaction per call, retried on quick lock conflicts; errors made retryable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from peewee import DatabaseError, InterfaceError, OperationalError

from server.core.errors import Conflict, TimedOut, Unavailable
from server.storage import liveness, outbox_signal
from server.storage.db import LOCK_TIMEOUT_MS, is_postgres, write_lock
from server.storage.models import db

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock
CONNECTION_SQLSTATE_PREFIXES = ("08", "57P")  # connection exceptions, admin shutdown
ATTEMPTS = 4
# A lock conflict is retried only when its attempt failed within this many seconds: a
# serialization failure, a deadlock (found after PostgreSQL's 1 s deadlock_timeout), SQLite's
# busy on a lock upgrade. An attempt that waited out the lock timeout (lock_timeout, SQLite's
# busy_timeout: 5 s) met a lock held for long; waiting again only multiplied the wait: an update
# of a row held by another session answered ABORTED after 20 s, and a caller with a 2 s deadline
# kept its worker busy that long (fault injection, 2026-12-02).
RETRY_WITHIN = 2.0
SATURATED = "too many calls waiting on the database; retry later"


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc.__cause__
    return getattr(orig, "sqlstate", None)


def _is_lock_conflict(exc: BaseException) -> bool:
    code = _sqlstate(exc)
    return code in RETRYABLE_SQLSTATES or "database is locked" in str(exc)


def _is_connection_failure(exc: BaseException) -> bool:
    code = _sqlstate(exc) or ""
    if code.startswith(CONNECTION_SQLSTATE_PREFIXES):
        return True
    text = str(exc).lower()
    return isinstance(exc, InterfaceError) or any(
        s in text for s in ("connection", "server closed", "could not connect", "terminating")
    )


def in_transaction(fn: Callable[[], T], *, write: bool = True) -> T:
    """Run fn in one transaction on a pooled connection; retry the whole body on a lock conflict
    that failed fast (RETRY_WITHIN).

    fn must keep side effects inside the database (the outbox), so a retried body never
    repeats anything outside it.
    """
    for attempt in range(ATTEMPTS):
        started = time.monotonic()
        try:
            return _run_once(fn, write=write)
        except liveness.Unreachable:
            raise Unavailable("database unavailable; retry later", reason="DATABASE_UNAVAILABLE") from None
        except liveness.Saturated:
            raise Unavailable(
                "too many calls waiting on the database; retry later", reason="DATABASE_SATURATED"
            ) from None
        except (OperationalError, InterfaceError, DatabaseError) as exc:
            quick = time.monotonic() - started < RETRY_WITHIN
            if _is_lock_conflict(exc) and quick and attempt + 1 < ATTEMPTS:
                time.sleep(0.01 * 2**attempt)
                continue
            raise _translate(exc) from exc
    raise AssertionError("unreachable")


LOCK_WAIT_SQL = "SELECT set_config('lock_timeout', %s, true)"


def cap_lock_wait(seconds: float | None) -> None:
    """Inside a write transaction: wait at most `seconds` (the call's remaining deadline) for a row
    lock, when that is shorter than lock_timeout. Sent with the transaction's next statement, in
    its round trip; PostgreSQL only. A caller with a 2 s deadline whose rows another session held
    kept its worker, and its database slot, waiting out the whole 5 s (fault injection, 2026-12-02)."""
    if seconds is None or seconds * 1000 >= LOCK_TIMEOUT_MS or not is_postgres():
        return
    db.obj.defer(LOCK_WAIT_SQL, [str(max(1, int(seconds * 1000)))], table="(lock_timeout)")


def _run_once(fn: Callable[[], T], *, write: bool) -> T:
    liveness.commit_in_doubt()  # forget an earlier call's verdict on this thread
    with liveness.connection():  # bounded: breaker, gate, and cut loose if the database goes silent
        if not write:
            return fn()
        database = db.obj  # once: each attribute read through the proxy is a Python call
        outermost = database.transaction_depth() == 0
        if outermost:
            outbox_signal.clear()
        with write_lock(), database.atomic():
            result = fn()
        if outermost:
            outbox_signal.committed()  # after COMMIT returned: wake the event feeds
        return result


QUERY_CANCELED = "57014"  # statement_timeout, or a cancel request (pg_cancel_backend)


def _translate(exc: Exception) -> Exception:
    if _sqlstate(exc) == QUERY_CANCELED:
        # The server's own 30 s statement limit (or an operator's cancel): not a fault of the
        # database's availability, and no bug either; it answered INTERNAL before.
        return TimedOut(
            "a statement ran past the server's time limit and was cancelled; nothing was changed "
            "(narrow the query or the selection)",
            reason="STATEMENT_TIMEOUT",
        )
    if "database is locked" in str(exc):
        # SQLite's single writer stayed busy past every retry: the service, not the call, is at
        # fault, so the caller may retry as is.
        return Unavailable("database busy; retry later", reason="DATABASE_BUSY")
    if _is_lock_conflict(exc):
        return Conflict("concurrent update of the same issues; retry", reason="CONCURRENT_UPDATE")
    if _is_connection_failure(exc) and liveness.commit_in_doubt():
        return Unavailable(
            "connection lost while committing: the change may have been applied; "
            "retry with the same request_id to learn the outcome",
            reason="COMMIT_OUTCOME_UNKNOWN",
        )
    if _is_connection_failure(exc):
        # One line per call would flood the log in an outage; the health watch logs the change.
        log.debug("database unavailable: %s", exc)
        return Unavailable("database unavailable; retry later", reason="DATABASE_UNAVAILABLE")
    return exc
