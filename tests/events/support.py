"""Helpers for the event-stream tests: a server with short intervals, and stream readers."""

from __future__ import annotations

import threading
from typing import Any

import grpc
from issues.v1 import events_pb2, issue_service_pb2, issue_service_pb2_grpc

from server.events import store
from server.storage.models import db
from server.transport.app import Config, Running, create_server
from tests.conftest import metadata, token_store

pb = issue_service_pb2
ev = events_pb2


def events_server(database_url: str, **overrides: Any) -> Running:
    settings: dict[str, Any] = {"events_poll_interval": 0.05, "events_heartbeat": 0.3, **overrides}
    running = create_server(Config(database_url=database_url, workers=8, **settings), tokens=token_store())
    db.connect(reuse_if_open=True)  # create_server rebinds the models: the test body needs a connection again
    return running


class Stream:
    """A WatchIssueEvents call read by a background thread, so tests can wait with a timeout."""

    def __init__(self, stub: Any, request: ev.WatchIssueEventsRequest, *, token: str = "reader",
                 user_id: int | None = None) -> None:  # fmt: skip
        self.call = stub.WatchIssueEvents(request, metadata=metadata(token, user_id=user_id), timeout=60)
        self.events: list[ev.IssueEvent] = []
        self.heartbeats: list[ev.Heartbeat] = []
        self.batch_sizes: list[int] = []  # one per `events` message (max_events_per_message > 1)
        self.error: grpc.RpcError | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                with self._changed:
                    if message.HasField("event"):
                        self.events.append(message.event)
                    elif message.HasField("events"):
                        self.events.extend(message.events.events)
                        self.batch_sizes.append(len(message.events.events))
                    else:
                        self.heartbeats.append(message.heartbeat)
                    self._changed.notify_all()
        except grpc.RpcError as exc:
            with self._changed:
                self.error = exc
                self._changed.notify_all()

    def wait_events(self, count: int, timeout: float = 20.0) -> list[ev.IssueEvent]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.events) >= count or self.error is not None, timeout)
            return list(self.events)

    def wait_heartbeats(self, count: int, timeout: float = 20.0) -> list[ev.Heartbeat]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.heartbeats) >= count or self.error is not None, timeout)
            return list(self.heartbeats)

    def wait_error(self, timeout: float = 20.0) -> grpc.RpcError | None:
        self._thread.join(timeout)
        return self.error

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(5)


def drain(stream: Stream, timeout: float = 20.0) -> list[ev.IssueEvent]:
    """Every event committed so far: wait for a heartbeat whose head covers the database's head."""
    store.stamp()
    head = store.head()
    with stream._changed:
        stream._changed.wait_for(
            lambda: any(b.head_event_id >= head for b in stream.heartbeats) or stream.error is not None, timeout
        )
        assert stream.error is None, stream.error
        assert any(b.head_event_id >= head for b in stream.heartbeats), "no heartbeat reached the head"
        return list(stream.events)


def stub_for(running: Running) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    return channel, issue_service_pb2_grpc.IssueServiceStub(channel)
