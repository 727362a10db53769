"""SmsPointClient: a typed client over one ``requests.Session``, and the one place that maps every gateway
answer and transport failure to the project's error tree (:func:`interpret`, :func:`transport_error`)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from ..channels import DEFAULT_CHANNEL_MAP, Channel
from ..errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    ConfigurationError,
    DispatcherError,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    InsufficientCredits,
    InvalidJobId,
    RateLimited,
    RequestNotAllowed,
    UnexpectedResponse,
    ValidationError,
)
from ..settings import MAX_BATCH
from . import responses as r
from .responses import Addressed, Balance, DeliveryReport, Recipient, SenderId, SendResult, Template

if TYPE_CHECKING:
    from ..settings import Settings

logger = logging.getLogger(__name__)

#: Gateway messages (matched case-insensitively as substrings) and the error each one means.
KNOWN_ERRORS: tuple[tuple[str, type[GatewayError]], ...] = (
    ("api key does not exist", AuthenticationFailed),
    ("request type not allowed", RequestNotAllowed),
    ("sms credits not available", InsufficientCredits),
    ("invalid message id", InvalidJobId),
)
ERROR_STATUSES = frozenset({"error", "failure", "failed", "fail"})


# --------------------------------------------------------------------------- the one mapping


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _known_error(message: str) -> type[GatewayError] | None:
    lowered = message.lower()
    return next((cls for needle, cls in KNOWN_ERRORS if needle in lowered), None)


def interpret(command: str, status_code: int, body: bytes | str, headers: Mapping[str, str], *,
              recipients: Sequence[Addressed] = (), job_id: str = "") -> Any:
    """Map one HTTP answer to the command's typed result (see ``responses.PARSERS``) or raise its error.

    On a send, anything undocumented (5xx, HTML, truncated JSON, wrong types, a success without usable
    data) is raised as AmbiguousOutcome from the UnexpectedResponse that describes it.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    ctx: dict[str, Any] = {"command": command, "status_code": status_code, "body": text[:200]}
    try:
        doc = _raise_for_status(command, status_code, text, headers, ctx)
        return _result(command, doc, recipients, job_id, ctx)
    except UnexpectedResponse as exc:
        if command not in r.SEND_COMMANDS:
            raise
        raise AmbiguousOutcome(f"{exc}; the gateway may have accepted it", **ctx) from exc


def _raise_for_status(command: str, status_code: int, text: str, headers: Mapping[str, str],
                      ctx: dict[str, Any]) -> dict[str, Any]:
    """HTTP-level mapping; returns the decoded JSON object that carries a string ``status``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if status_code == 429:
        after = parse_retry_after(lowered.get("retry-after"))
        raise RateLimited(f"{command}: HTTP 429 (retry after {after} s)", retry_after=after, **ctx)
    if status_code in (401, 403):
        raise AuthenticationFailed(f"{command}: HTTP {status_code}, the gateway refused the API key", **ctx)
    if status_code >= 500:
        if command in r.SEND_COMMANDS:
            raise UnexpectedResponse(f"{command}: HTTP {status_code}", **ctx)
        raise GatewayUnavailable(f"{command}: HTTP {status_code} from the gateway", **ctx)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than the parser goes
        if 400 <= status_code < 500:
            raise GatewayRejected(f"{command}: HTTP {status_code} with a non-JSON body", **ctx) from exc
        raise UnexpectedResponse(f"{command}: HTTP {status_code} body is not JSON", **ctx) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        if 400 <= status_code < 500:
            raise GatewayRejected(f"{command}: HTTP {status_code} with an undocumented body", **ctx)
        raise UnexpectedResponse(f"{command}: the answer has no string 'status'", **ctx)
    return doc


def _result(command: str, doc: dict[str, Any], recipients: Sequence[Addressed], job_id: str,
            ctx: dict[str, Any]) -> Any:
    """Body-level mapping of a JSON answer with a ``status``."""
    status = doc["status"].strip().lower()
    message = doc["message"] if isinstance(doc.get("message"), str) else ""
    parse = r.PARSERS[command]
    refused = 400 <= ctx["status_code"] < 500
    known = _known_error(message) if status != "success" else None
    if known is not None:
        raise known(f"{command}: {message}", **ctx)
    _raise_for_error_code(command, doc, message, ctx)
    if status != "success":
        if status not in ERROR_STATUSES:
            raise UnexpectedResponse(f"{command}: undocumented status {doc['status']!r}", **ctx)
        if doc.get("data") is None or refused:
            raise GatewayRejected(f"{command}: {message or 'status ' + doc['status']}", **ctx)
        try:  # sms-delivery-status documents "status": "error" on a success that carries data
            result = parse(doc, recipients, job_id)
        except r.Malformed as exc:
            raise GatewayRejected(f"{command}: {message or 'status ' + doc['status']}", **ctx) from exc
    elif refused:
        raise GatewayRejected(f"{command}: HTTP {ctx['status_code']} ({message or 'no message'})", **ctx)
    else:
        try:
            result = parse(doc, recipients, job_id)
        except r.Malformed as exc:
            raise UnexpectedResponse(f"{command}: success without usable data ({exc})", **ctx) from exc
    code = doc.get("code")
    if code is not None and type(code) is not int and not (isinstance(code, str) and code.strip().isdigit()):
        raise UnexpectedResponse(f"{command}: 'code' is neither a number nor a numeric string", **ctx)
    return result


def _raise_for_error_code(command: str, doc: dict[str, Any], message: str, ctx: dict[str, Any]) -> None:
    """A send answer whose ``data.ErrorCode`` is not "000" was refused, whatever its ``status`` says."""
    data = doc.get("data")
    code = data.get("ErrorCode") if isinstance(data, dict) else None
    if command not in r.SEND_COMMANDS or code is None or not str(code).strip().lstrip("0"):
        return
    reason = str(data.get("ErrorMessage") or message) if isinstance(data, dict) else message
    raise (_known_error(reason) or GatewayRejected)(f"{command}: gateway ErrorCode {code}: {reason}", **ctx)


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the request provably never left: connect timeout, refused, DNS or TLS handshake failure."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    seen: BaseException | None = exc
    for _ in range(10):  # requests wraps urllib3's MaxRetryError, whose .reason is the socket error
        if seen is None:
            break
        if isinstance(seen, NewConnectionError | ConnectionRefusedError):
            return True
        inner = [a for a in seen.args if isinstance(a, BaseException)] + [getattr(seen, "reason", None)]
        seen = next((x for x in inner if isinstance(x, BaseException)), None) or seen.__cause__
    return False


def transport_error(command: str, exc: requests.RequestException) -> DispatcherError:
    """Map a requests exception: unsent -> GatewayUnavailable; maybe sent -> AmbiguousOutcome on a send."""
    kind = type(exc).__name__
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return ConfigurationError(f"gateway base URL is not usable ({kind})")
    if _never_connected(exc):
        return GatewayUnavailable(f"{command}: could not connect to the gateway ({kind})", command=command)
    what = "no answer within the read timeout" if isinstance(exc, requests.ReadTimeout) else \
        f"connection lost after the request was sent ({kind})"
    if command in r.SEND_COMMANDS:
        return AmbiguousOutcome(f"{command}: {what}; the gateway may have accepted it", command=command)
    return GatewayUnavailable(f"{command}: {what}", command=command)


# --------------------------------------------------------------------------- the client


def _mask(number: str) -> str:
    from ..numbers import mask  # lazily: numbers.py pulls in phonenumbers, which reads-only calls never need

    return mask(number)


#: How send-bulk-sms carries its fields: the PHP example's form fields or the C# example's JSON body (both
#: hold ``recipient`` as a JSON string). Measured (docs/performance.md): JSON costs less on both sides.
BULK_ENCODINGS = ("json", "form")


class SmsPointClient:
    """TheSMSPoint API over one pooled ``requests.Session``: typed results in, typed errors out.

    Every call is a POST with an explicit (connect, read) timeout and no transport-level retries: retrying
    is the caller's decision (see :mod:`dispatcher.gateway.retry`), and sends are never retried blindly.
    """

    def __init__(self, base_url: str, api_key: SecretStr | str, *, connect_timeout: float = 3.05,
                 read_timeout: float = 30.0, channel_map: Mapping[str, int] | None = None,
                 session: requests.Session | None = None, pool_size: int = 10,
                 bulk_encoding: str = "json") -> None:
        if not base_url.strip():
            raise ConfigurationError("gateway base URL is empty")
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not self._api_key.get_secret_value().strip():
            raise ConfigurationError("gateway API key is empty (set SMSPOINT_API_KEY)")
        if not all(0 < t < math.inf for t in (connect_timeout, read_timeout)):
            raise ConfigurationError("gateway timeouts must be positive, finite numbers of seconds")
        self.base_url = base_url.strip().rstrip("/")
        self.timeout: tuple[float, float] = (float(connect_timeout), float(read_timeout))
        self.channel_map: dict[str, int] = dict(channel_map or DEFAULT_CHANNEL_MAP)
        missing = [c.value for c in Channel if c.value not in self.channel_map]
        if missing:
            raise ConfigurationError(f"channel_map has no gateway number for {missing}")
        if bulk_encoding not in BULK_ENCODINGS:
            raise ConfigurationError(f"send-bulk-sms encoding must be one of {', '.join(BULK_ENCODINGS)}")
        self.bulk_encoding = bulk_encoding
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self._session = session

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsPointClient:
        """A client configured from the one Settings object."""
        return cls(settings.smspoint_base_url, settings.smspoint_api_key,
                   connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                   channel_map=settings.channel_map, bulk_encoding=settings.send_bulk_encoding)

    def __repr__(self) -> str:
        return f"SmsPointClient(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    # ----------------------------------------------------------------- commands

    def balance(self) -> Balance:
        """Remaining credits per package."""
        result: Balance = self._call(r.BALANCE, None)
        return result

    def sender_ids(self) -> list[SenderId]:
        """The account's sender ids (approved or not)."""
        result: list[SenderId] = self._call(r.SENDER_IDS, None)
        return result

    def templates(self) -> list[Template]:
        """The account's DLT templates (approved or not)."""
        result: list[Template] = self._call(r.TEMPLATES, None)
        return result

    def send_single(self, number: str, text: str, *, sender_id: str, template_id: str, channel: Channel,
                    is_unicode: bool) -> SendResult:
        """Send one SMS (send-single-sms)."""
        fields = {"recipient": number, "message": text}
        fields.update(self._common(sender_id, template_id, channel, is_unicode))
        logger.debug("send-single-sms to %s on %s", _mask(number), Channel.parse(channel).value)
        return self._send(r.SEND_SINGLE, fields, [Recipient(number, text)])

    def send_bulk(self, recipients: Sequence[Addressed], *, sender_id: str, template_id: str,
                  channel: Channel, is_unicode: bool) -> SendResult:
        """Send up to 2000 SMS in one call (send-bulk-sms); refuses more before any HTTP."""
        if not recipients:
            raise ValidationError("recipients", "at least one recipient is required")
        if len(recipients) > MAX_BATCH:
            raise ValidationError("recipients",
                                  f"{len(recipients)} recipients; the gateway takes at most {MAX_BATCH}")
        rows = [{"number": x.number, "text": x.text} for x in recipients]
        fields = {"recipient": json.dumps(rows, separators=(",", ":"))}
        fields.update(self._common(sender_id, template_id, channel, is_unicode))
        logger.debug("send-bulk-sms of %d recipients on %s (%s)", len(rows), Channel.parse(channel).value,
                     self.bulk_encoding)
        return self._send(r.SEND_BULK, fields, list(recipients), as_json=self.bulk_encoding == "json")

    def delivery_status(self, job_id: str) -> DeliveryReport:
        """Delivery reports of one job (the JobId / message_id a send returned)."""
        if not str(job_id).strip():
            raise ValidationError("job_id", "a job id is required")
        result: DeliveryReport = self._call(r.DELIVERY_STATUS, {"job_id": str(job_id)}, job_id=str(job_id))
        return result

    # ----------------------------------------------------------------- plumbing

    def _common(self, sender_id: str, template_id: str, channel: Channel, is_unicode: bool) -> dict[str, str]:
        number = self.channel_map[Channel.parse(channel).value]
        return {"sender_id": sender_id, "template_id": template_id, "channel": str(number),
                "is_unicode": "1" if is_unicode else "0"}

    def _send(self, command: str, fields: dict[str, str], recipients: list[Addressed], *,
              as_json: bool = False) -> SendResult:
        result: SendResult = self._call(command, fields, recipients=recipients, as_json=as_json)
        logger.info("%s accepted: job %s, %d messages, %d rejected", command, result.job_id,
                    len(result.messages), len(result.rejected))
        return result

    def _call(self, command: str, fields: dict[str, str] | None, *, recipients: Sequence[Addressed] = (),
              job_id: str = "", as_json: bool = False) -> Any:
        """POST ``fields`` as form fields, or (``as_json``) as one JSON object of strings: the two
        encodings the documentation shows for send-bulk-sms (PHP form fields, the C# JSON body)."""
        key = self._api_key.get_secret_value()
        headers = {"key": key, "Accept": "application/json"}
        body: bytes | dict[str, str] | None = fields
        if as_json:
            body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            try:
                resp = self._session.post(f"{self.base_url}/{command}", data=body, timeout=self.timeout,
                                          headers=headers, allow_redirects=False)
            except requests.RequestException as exc:
                raise transport_error(command, exc) from exc
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.debug("%s -> HTTP %d in %.0f ms", command, resp.status_code, elapsed_ms)
            return interpret(command, resp.status_code, resp.content, resp.headers, recipients=recipients,
                             job_id=job_id)
        except DispatcherError as exc:
            _scrub(exc, key)
            logger.warning("%s failed after %.0f ms: %s (HTTP %s)", command,
                           (time.monotonic() - started) * 1000, type(exc).__name__,
                           getattr(exc, "status_code", None))
            raise

    def close(self) -> None:
        """Close the pooled connections (only when this client created the session)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SmsPointClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _scrub(exc: BaseException, secret: str) -> None:
    """Remove the API key from an error (and the gateway errors it wraps), should the gateway echo it."""
    seen: BaseException | None = exc
    while isinstance(seen, DispatcherError):
        seen.args = tuple(a.replace(secret, "***") if isinstance(a, str) else a for a in seen.args)
        if isinstance(seen, GatewayError):
            seen.body = seen.body.replace(secret, "***")
        seen = seen.__cause__
