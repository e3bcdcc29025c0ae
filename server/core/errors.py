"""Transport-free error vocabulary of the core; the transport maps each class to a status code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str  # path in the command, e.g. "status_details.in_release"
    description: str


class CoreError(Exception):
    """Base of every error the core raises on purpose."""

    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = metadata


class InvalidArgument(CoreError):
    reason = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, *, violations: list[FieldViolation] | None = None, reason: str | None = None,
        detail: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(message, reason=reason)
        self.violations = violations or []
        # detail=True: the message is Sentry's own 400 detail, kept word for word; the violations
        # only say which fields it is about. Otherwise the message is made from the violations.
        self.detail = detail

    @classmethod
    def field(cls, path: str, description: str) -> InvalidArgument:
        return cls(f"{path}: {description}", violations=[FieldViolation(path, description)])


class NotFound(CoreError):
    reason = "NOT_FOUND"


class PermissionDenied(CoreError):
    reason = "PERMISSION_DENIED"


class FailedPrecondition(CoreError):
    reason = "FAILED_PRECONDITION"


class Conflict(CoreError):
    """A concurrent change won (stale etag, serialization failure): re-read and retry."""

    reason = "CONFLICT"


class Unavailable(CoreError):
    """The database cannot be reached or stayed locked: retry later."""

    reason = "UNAVAILABLE"


class Cancelled(CoreError):
    """The caller went away (cancel or deadline) before commit; the transaction was rolled back."""

    reason = "CANCELLED"


class TimedOut(CoreError):
    """The work ran past a limit of the server's own (a statement past statement_timeout); its
    transaction was rolled back. Retrying the same request meets the same limit."""

    reason = "TIMED_OUT"


class Unimplemented(CoreError):
    reason = "UNIMPLEMENTED"


class ResourceExhausted(CoreError):
    reason = "RESOURCE_EXHAUSTED"


class OutOfRange(CoreError):
    """A cursor outside what is kept (e.g. older than the pruned events)."""

    reason = "OUT_OF_RANGE"


@dataclass
class ViolationCollector:
    """Collects field violations so one reply names every bad field at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def raise_if_any(self) -> None:
        if self.violations:
            first = self.violations[0]
            raise InvalidArgument(f"{first.field}: {first.description}", violations=self.violations)
