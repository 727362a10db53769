"""The TheSMSPoint gateway: typed client (client.py), results (responses.py), retry policy (retry.py)."""

from .client import SmsPointClient, interpret, parse_retry_after, transport_error
from .responses import (
    Balance,
    DeliveryEntry,
    DeliveryReport,
    Recipient,
    RejectedRecipient,
    SenderId,
    SendResult,
    SentMessage,
    Template,
)
from .retry import unsent_retry

__all__ = [
    "Balance",
    "DeliveryEntry",
    "DeliveryReport",
    "Recipient",
    "RejectedRecipient",
    "SendResult",
    "SenderId",
    "SentMessage",
    "SmsPointClient",
    "Template",
    "interpret",
    "parse_retry_after",
    "transport_error",
    "unsent_retry",
]
