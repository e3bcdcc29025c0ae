"""One JSON shape for every log line: ts (ISO 8601, UTC), level, logger, message, request id, trace id.

python-json-logger does the serialising; this module adds the fields every line must carry. The
request id of the RPC a thread is serving is bound here by the transport's interceptor, so a
line logged anywhere during that call (an internal error, a slow query) can be found by it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from server.storage.json_text import reusable_encode

_call = threading.local()  # gRPC serves each call (and pulls a stream's replies) in one thread
FIRST_KEYS = ("ts", "level", "logger", "message")


def bind_request_id(request_id: str | None) -> None:
    """The request id later lines of this thread carry (None: outside any call)."""
    _call.request_id = request_id


def current_request_id() -> str | None:
    return getattr(_call, "request_id", None)


def iso_utc(created: float) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ`. The text up to the second is kept for the second it names:
    every line wants one, and a datetime formatted anew each time cost ~20k instructions."""
    fraction, whole = math.modf(created)
    micros = round(fraction * 1_000_000)  # as datetime.fromtimestamp rounds: half to even
    second, millis = int(whole) + micros // 1_000_000, micros % 1_000_000 // 1000
    cached = _second_text
    if cached[0] != second:
        text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _remember_second(second, text)
    return f"{cached[1]}.{millis:03d}Z"


_second_text: tuple[int, str] = (-1, "")


def _remember_second(second: int, text: str) -> tuple[int, str]:
    global _second_text  # one tuple, replaced whole: a thread reads either the old or the new
    _second_text = (second, text)
    return _second_text


def _add_request_id(line: dict[str, Any]) -> None:
    """The bound request id, unless the line carries one of its own."""
    request_id = current_request_id()
    if request_id and "request_id" not in line:
        line["request_id"] = request_id


def trace_ids() -> dict[str, str]:
    """trace_id and span_id of the span current in this thread; empty when tracing is off."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}


EXTRA_KEYS = "extra_keys"  # a record's attribute naming its extra fields (`with_fields`)


def with_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`extra=` for a log call whose extra fields are these, with the trace ids of the span
    current now (taken in the call's thread: a handler may format later, elsewhere). The record
    names them, so the formatter takes them as they are instead of scanning every attribute of
    the record for the ones that are not logging's own. For the access line, one per call: that
    scan and the library's generic steps took ~60 % of its formatting. The record keeps them as
    attributes, as plain `extra=` does, for any other handler."""
    extra = {**fields, **trace_ids()} if "trace_id" not in fields else dict(fields)
    extra[EXTRA_KEYS] = tuple(extra)
    return extra


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=with_fields(fields))`, the record built from a template.

    The same record goes to the same handlers, filters and propagation; only its making is
    cheaper. LogRecord.__init__ works out, for every line, what is the same for every line of a
    logger and level (its level name, its file and function fields, which read "unknown" with
    the caller lookup off: configure_logging): a fifth of the access line's cost. With the caller
    lookup on, threads, processes or tasks recorded, a record factory of someone else's, or a
    field named as a record attribute, the library's own path (which refuses such a field with
    its KeyError)."""
    if not logger.isEnabledFor(level):
        return
    template, reserved = _template(logger.name, level)
    if (
        logging._srcfile is not None  # the library finds the caller
        or _per_record_context()  # a thread, process or task a template cannot know
        or logging.getLogRecordFactory() is not logging.LogRecord
        or not reserved.isdisjoint(fields)
    ):
        logger.log(level, message, extra=with_fields(fields), stacklevel=2)  # the caller's line, not ours
        return
    record = logging.LogRecord.__new__(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(template)
    created = time.time()
    attributes["created"] = created
    attributes["msecs"] = int((created - int(created)) * 1000) + 0.0  # as LogRecord (gh-89047)
    attributes["relativeCreated"] = (created - _START) * 1000
    attributes["msg"] = message
    attributes.update(fields)
    keys = tuple(fields)
    if "trace_id" not in fields and (ids := trace_ids()):
        attributes.update(ids)
        keys += tuple(ids)
    attributes[EXTRA_KEYS] = keys
    logger.handle(record)


def _per_record_context() -> bool:
    return bool(
        logging.logThreads
        or logging.logProcesses
        or logging.logMultiprocessing
        or getattr(logging, "logAsyncioTasks", False)  # Python 3.12+
    )


# When logging was imported, in seconds (Python 3.13 keeps it in nanoseconds).
_STARTED: Any = logging._startTime  # type: ignore[attr-defined]
_START: float = _STARTED / 1e9 if isinstance(_STARTED, int) else _STARTED


@functools.cache
def _template(name: str, level: int) -> tuple[dict[str, Any], frozenset[str]]:
    """What a record of this logger and level holds, as the library makes it, and the names an
    extra field may not take (the library refuses them). Cached per logger and level: a handful."""
    record = logging.LogRecord(name, level, "(unknown file)", 0, "", (), None, "(unknown function)", None)
    # Every attribute, in the library's order (a formatter may walk them): each call sets its own
    # time and message in their places.
    template = dict(record.__dict__)
    return template, frozenset({*template, "message", "asctime", EXTRA_KEYS})


class JsonLineFormatter(JsonFormatter):
    """{"ts", "level", "logger", "message", "request_id"?, "trace_id"?, "span_id"?, ...extra}."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exc"},
            json_serializer=functools.partial(json.dumps, separators=(",", ":")),  # one compact line
        )
        # What jsonify_log_record's json.dumps builds for every line, built once for the fast
        # path (the same encoder class and arguments, hence the same text).
        assert self.json_indent is None and self.json_encoder is not None  # the library's JsonEncoder
        encoder = self.json_encoder(
            separators=(",", ":"), default=self.json_default, ensure_ascii=self.json_ensure_ascii
        )
        self._encode: Callable[[Any], str] = reusable_encode(encoder) or encoder.encode

    def format(self, record: logging.LogRecord) -> str:
        keys = record.__dict__.get(EXTRA_KEYS)
        if keys is None or record.exc_info or record.exc_text or record.stack_info or not isinstance(record.msg, str):
            return super().format(record)
        # The same line as the library's path below makes for such a record (a test compares them).
        attributes = record.__dict__
        line = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{key: attributes[key] for key in keys},
        }
        _add_request_id(line)  # the trace ids came with the fields (with_fields)
        return self.prefix + self._encode(line)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop(EXTRA_KEYS, None)
        log_data["ts"] = iso_utc(record.created)
        _add_request_id(log_data)
        if "trace_id" not in log_data:
            log_data.update(trace_ids())

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        first = {key: log_data.pop(key) for key in FIRST_KEYS if key in log_data}
        return {**first, **log_data}


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process (every command, every logger)."""
    # No line carries the caller's file and line, the thread, the process or the multiprocessing
    # name: skip collecting them for every record (the logging HOWTO's "Optimization": the
    # caller lookup walks the stack; ~7 us of a request's ~34 us access line).
    logging._srcfile = None
    logging.logMultiprocessing = False
    logging.logProcesses = False
    logging.logThreads = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # Python 3.12+; no line prints the task
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
