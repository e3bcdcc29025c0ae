"""Publishing to NATS JetStream: the stream made if missing, one event per message, acked."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from server.events.records import EventRecord
from server.transport.event_convert import issue_event_to_proto, kind_subject

log = logging.getLogger("issue_service.relay")


@dataclass(frozen=True)
class Target:
    url: str = "nats://127.0.0.1:4222"
    subject_prefix: str = "issues.v1.events"
    stream: str = "ISSUES_EVENTS"
    # Nats-Msg-Id dedupe covers re-publishes within this window: it must exceed the longest gap
    # between a publish and its delivery mark surviving (a crash plus the restart).
    duplicate_window: float = 600.0
    ack_timeout: float = 5.0


def subject(target: Target, record: EventRecord) -> str:
    return f"{target.subject_prefix}.{record.organization_id}.{record.project_id}.{kind_subject(record.kind)}"


def message_id(record: EventRecord) -> str:
    """`<event id>@<when it was written>`: the same for every re-publish of one outbox row (so
    JetStream drops the copy), different for another event that reuses the id. With the bare
    event id, a database restored from a backup (its sequence hands out ids again) or two
    databases feeding one stream had new events dropped as duplicates of old ones, and marked
    delivered (fault injection, 2026-12-02: 300 of 320 events lost)."""
    return f"{record.seq}@{record.occurred_at.isoformat()}"


def body(record: EventRecord) -> bytes:
    """The IssueEvent in proto3 JSON (events.proto is the catalogue)."""
    return json_format.MessageToJson(issue_event_to_proto(record), indent=None).encode()


PING_SECONDS = 10


async def _connection_error(exc: Exception) -> None:
    """nats-py's default logs a traceback per failed attempt; the relay's loop logs each failed
    turn once, with its backoff."""
    log.debug("nats connection error: %s", exc)


class Publisher:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._nc: Any = None
        self._js: Any = None

    async def connect(self) -> None:
        import nats
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        # No client-side reconnect: a lost connection fails the publish, and the relay loop
        # reconnects with its own backoff, so nothing is buffered out of sight. A connect gives
        # up after two tries (nats-py reads max_reconnect_attempts=0 as "retry for ever": the
        # relay then sat in connect(), deaf to SIGTERM, for as long as NATS was down). Pings
        # every PING_SECONDS: an idle connection to a NATS that went silent is closed after two
        # go unanswered (nats-py's default waits 2 minutes per ping), and /readyz tells.
        self._nc = await nats.connect(
            self.target.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1,
            reconnect_time_wait=0.2, ping_interval=PING_SECONDS, max_outstanding_pings=2,
            error_cb=_connection_error,
        )  # fmt: skip
        self._js = self._nc.jetstream(timeout=self.target.ack_timeout)
        try:
            await self._js.stream_info(self.target.stream)
        except NotFoundError:
            config = StreamConfig(
                name=self.target.stream,
                subjects=[f"{self.target.subject_prefix}.>"],
                duplicate_window=self.target.duplicate_window,
            )
            await self._js.add_stream(config)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def publish(self, record: EventRecord) -> bool:
        """Returns once JetStream acked: True when it stored the message, False when it already
        held one of the same message id (a re-publish after a crash before the delivery mark)."""
        if not self.connected:
            await self.close()
            await self.connect()
        headers = {"Nats-Msg-Id": message_id(record), "Content-Type": "application/json"}
        ack = await self._js.publish(
            subject(self.target, record), body(record), headers=headers, stream=self.target.stream
        )
        return not ack.duplicate

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # already broken: nothing left to close
                await nc.close()
