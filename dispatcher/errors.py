"""One error tree for the whole project. Every error the project raises derives from DispatcherError."""

from __future__ import annotations

from dataclasses import dataclass


class DispatcherError(Exception):
    """Root of every error smspoint-dispatcher raises."""


class ConfigurationError(DispatcherError):
    """A setting is missing or inconsistent."""


# --------------------------------------------------------------------------- input validation


class ValidationError(DispatcherError, ValueError):
    """A request was refused before anything was written; names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InvalidNumber(ValidationError):
    """The recipient is not a valid mobile number."""

    def __init__(self, reason: str, field: str = "to") -> None:
        super().__init__(field, reason)


class InvalidText(ValidationError):
    """The text is empty, too long or otherwise unsendable."""

    def __init__(self, reason: str, field: str = "text") -> None:
        super().__init__(field, reason)


class TemplateMismatch(ValidationError):
    """The text does not match the registered DLT template (fixed text exact, each {#var#} <= 30 chars)."""

    def __init__(self, reason: str, field: str = "text") -> None:
        super().__init__(field, reason)


class LinkNotWhitelisted(ValidationError):
    """A URL or call-back number in the text is not on the account's DLT whitelist (operators block it)."""

    def __init__(self, reason: str, field: str = "text") -> None:
        super().__init__(field, reason)


class OptedOut(ValidationError):
    """The recipient opted out of the message's channel (suppression list)."""

    def __init__(self, reason: str, field: str = "to") -> None:
        super().__init__(field, reason)


class CatalogError(ValidationError):
    """The sender id or template is unknown, not approved, or registered for another channel."""


@dataclass(frozen=True)
class RowError:
    """One rejected row of a bulk request."""

    index: int
    field: str
    reason: str


class BulkValidationError(DispatcherError, ValueError):
    """A bulk request had invalid rows; carries all of them. Nothing was enqueued."""

    def __init__(self, rejects: list[RowError], total: int) -> None:
        self.rejects = rejects
        self.total = total
        first = rejects[0] if rejects else None
        head = f"; first: row {first.index} {first.field}: {first.reason}" if first else ""
        super().__init__(f"{len(rejects)} of {total} rows invalid{head}")


class IdempotencyConflict(DispatcherError):
    """An idempotency key was reused with a different request."""

    def __init__(self, key: str, message_id: str) -> None:
        self.key = key
        self.message_id = message_id
        super().__init__(f"idempotency_key {key!r} was first used for message {message_id} "
                         "with a different recipient or text")


class MessageNotFound(DispatcherError, LookupError):
    """No message has that id."""


class BreakerNotFound(DispatcherError, LookupError):
    """No open breaker for that sender id and template."""


class InvalidTransition(DispatcherError):
    """An operator asked for a state change the state machine does not allow."""


class PurgeRunning(DispatcherError):
    """Another retention purge holds the purge lease; nothing was deleted."""


# --------------------------------------------------------------------------- infrastructure


class QueueUnavailable(DispatcherError):
    """Redis could not be reached; nothing was enqueued."""


class StorageUnavailable(DispatcherError):
    """The database could not be reached."""


# --------------------------------------------------------------------------- the gateway


class GatewayError(DispatcherError):
    """The gateway call failed. Carries the command, HTTP status (if any) and a short body excerpt."""

    def __init__(self, message: str, *, command: str = "", status_code: int | None = None,
                 body: str = "") -> None:
        self.command = command
        self.status_code = status_code
        self.body = body[:200]
        super().__init__(message)


class AuthenticationFailed(GatewayError):
    """The gateway does not know the API key ("API Key Does Not Exists")."""


class RequestNotAllowed(GatewayError):
    """The gateway refused the request type ("Request Type Not Allowed")."""


class InsufficientCredits(GatewayError):
    """The package has no credits left ("SMS Credits Not Available"). Nothing was sent."""


class InvalidJobId(GatewayError):
    """The gateway does not know the job / message id ("Invalid Message ID")."""


class GatewayRejected(GatewayError):
    """The gateway rejected the request before processing it (bad sender, template, text, numbers)."""


class RetryableGatewayError(GatewayError):
    """Provably not processed by the gateway; safe to retry."""


class RateLimited(RetryableGatewayError):
    """HTTP 429; ``retry_after`` seconds is the gateway's wish (None when it gave none)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class GatewayUnavailable(RetryableGatewayError):
    """Connection refused, connect timeout, or a 5xx on a read-only command."""


class UnexpectedResponse(GatewayError):
    """The gateway answered with something that is not a documented response (HTML, truncated JSON...)."""


class AmbiguousOutcome(GatewayError):
    """A send may or may not have reached the gateway (read timeout, reset after sending, 5xx).

    Messages in such a call become ``unknown`` and are never resent automatically.
    """
