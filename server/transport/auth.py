"""Caller identity: bearer tokens from a token file (stored hashed), acting user from metadata."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.rpc import code_pb2
from grpc_status import rpc_status

from server.core.commands import Caller
from server.transport import limits
from server.transport.errors import status_for, violations_status
from server.transport.public import parse_or_abort, parsed_here

VALID_SCOPES = frozenset({"event:read", "event:write", "event:admin"})
PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
SINGLE_KEYS = ("authorization", "x-acting-user-id")  # sent twice: UNAUTHENTICATED
_CALLER_KEY = "issue-service-caller"
_local = threading.local()


@dataclass(frozen=True)
class Token:
    name: str
    sha256: str
    scopes: frozenset[str]
    organization_ids: frozenset[int] | None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def load_tokens(path: str | Path) -> list[Token]:
    """Read the token file: {"tokens": [{"name", "sha256" | "token", "scopes", "organizations"?}]}."""
    data = json.loads(Path(path).read_text())
    tokens = []
    for i, entry in enumerate(data.get("tokens", [])):
        digest = entry.get("sha256") or (hash_token(entry["token"]) if "token" in entry else None)
        if not digest or "name" not in entry:
            raise ValueError(f"token file {path}: entry {i} needs a name and a sha256 (or token)")
        scopes = frozenset(entry.get("scopes", []))
        if not scopes <= VALID_SCOPES:
            raise ValueError(
                f"token file {path}: entry {entry['name']!r} has unknown scopes {sorted(scopes - VALID_SCOPES)}"
            )
        orgs = entry.get("organizations")
        tokens.append(Token(entry["name"], digest, scopes, frozenset(orgs) if orgs is not None else None))
    return tokens


class TokenStore:
    """Tokens by hash; compared in constant time; reloadable (SIGHUP) without a restart."""

    def __init__(self, path: str | Path | None = None, tokens: list[Token] | None = None) -> None:
        self.path = path
        self._tokens = tokens if tokens is not None else (load_tokens(path) if path else [])

    def reload(self) -> None:
        if self.path:
            self._tokens = load_tokens(self.path)

    def find(self, secret: str) -> Token | None:
        digest = hash_token(secret)
        found = None
        for token in self._tokens:  # no early exit: time does not depend on which token matched
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found


def _deny(message: str, reason: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    status = rpc_status.to_status(status_for(code_pb2.UNAUTHENTICATED, message, reason=reason))

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    return handler


def _repeated_key(pairs: tuple[Any, ...]) -> str | None:
    for key in SINGLE_KEYS:
        if sum(1 for k, _ in pairs if k == key) > 1:
            return key
    return None


def _parse_user(value: str | None) -> tuple[int | None, bool]:
    # Only a missing header means "no acting user" (a system caller). An empty one is a client
    # that meant to send a user and lost it: acting as the system instead would write its
    # activities with no user and skip the member's project access checks.
    if value is None:
        return None, True
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None, False
    return int(value), True


class AuthInterceptor(grpc.ServerInterceptor):
    """Authenticates every RPC but health checking and reflection."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        method = details.method or ""
        if method.startswith(PUBLIC_PREFIXES):
            return parsed_here(continuation(details))
        pairs = tuple(details.invocation_metadata or ())
        repeated = _repeated_key(pairs)
        if repeated:
            # Which copy would win depends on the reader (a dict keeps the last): a read token
            # followed by an admin one must not write, so neither is trusted.
            return _unary(_deny(f"{repeated} metadata sent more than once", "DUPLICATE_METADATA"))
        metadata = dict(pairs)
        header = metadata.get("authorization", "")
        scheme, _, secret = str(header).partition(" ")
        if not header:
            return _unary(_deny("Missing bearer token in authorization metadata", "MISSING_TOKEN"))
        if scheme.lower() != "bearer" or not secret.strip():
            # Never echo the header: it may be a credential sent the wrong way.
            return _unary(_deny("Malformed authorization metadata: expected 'Bearer <token>'", "MALFORMED_TOKEN"))
        token = self.store.find(secret.strip())
        if token is None:
            return _unary(_deny("Unknown or revoked token", "BAD_TOKEN"))
        user_id, ok = _parse_user(metadata.get("x-acting-user-id"))  # type: ignore[arg-type]
        if not ok:
            return _unary(_deny("x-acting-user-id must be a numeric user id", "BAD_ACTING_USER"))
        caller = Caller(token.name, token.scopes, user_id, token.organization_ids)
        handler = continuation(details)
        return _with_caller(handler, caller) if handler is not None else None


def _unary(fn: Callable[[Any, grpc.ServicerContext], Any]) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(fn)


def _with_caller(handler: grpc.RpcMethodHandler[Any, Any], caller: Caller) -> grpc.RpcMethodHandler[Any, Any]:
    """Hand the caller to the servicer through a thread-local set for the handler's duration."""
    if handler.unary_stream is not None:
        return _stream_with_caller(handler, caller)
    if handler.unary_unary is None:
        return handler
    inner = handler.unary_unary
    parse = handler.request_deserializer

    def wrapped(raw: Any, context: grpc.ServicerContext) -> Any:
        # Parsed here, not by grpc: grpc answers unparsable bytes with INTERNAL, the client's
        # fault is INVALID_ARGUMENT.
        request = _parse_request(parse, raw, context)
        _local.caller = caller
        try:
            return inner(request, context)
        finally:
            _local.caller = None

    return grpc.unary_unary_rpc_method_handler(
        wrapped, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _stream_with_caller(handler: Any, caller: Caller) -> grpc.RpcMethodHandler[Any, Any]:
    """As _with_caller for server streaming: grpc pulls the responses in the handler's thread,
    so the caller stays set while the iterator runs, not just while it is created."""
    inner = handler.unary_stream
    assert inner is not None
    parse = handler.request_deserializer

    def wrapped(raw: Any, context: grpc.ServicerContext) -> Any:
        request = _parse_request(parse, raw, context)
        _local.caller = caller
        try:
            yield from inner(request, context)
        finally:
            _local.caller = None

    return grpc.unary_stream_rpc_method_handler(
        wrapped, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _parse_request(parse: Callable[[bytes], Any] | None, raw: Any, context: grpc.ServicerContext) -> Any:
    if parse is None:
        return raw
    request = parse_or_abort(parse, raw, context)
    _local.request = request  # outer wrappers (the access log) see bytes; they read it here
    # The edge limits (server/transport/limits.py), before any handler and any database work.
    found = limits.violations(request)
    if found:
        context.abort_with_status(rpc_status.to_status(violations_status(found)))
    return request


def forget_parsed_request() -> None:
    _local.request = None


def parsed_request() -> Any:
    """The request the auth wrapper parsed in this thread, if any."""
    return getattr(_local, "request", None)


def caller_from(context: grpc.ServicerContext) -> Caller:
    caller = getattr(_local, "caller", None)
    if caller is None:  # only reachable if the interceptor is missing: fail closed
        raise PermissionError("no authenticated caller")
    return caller  # type: ignore[no-any-return]
