"""Sample messages that pass the simulator's default catalogue (DLT templates), unique per index so a
ledger entry names its message. Shared by the tests, the benchmarks and anyone trying the simulator."""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]

TXN: Params = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1207161000000000002"}
TXN_HI: Params = {"channel": "transactional", "sender_id": "SMSPNT", "template_id": "1207161000000000003"}
OTP: Params = {"channel": "otp", "sender_id": "OTPSMS", "template_id": "1207161000000000004"}
PROMO: Params = {"channel": "promotional", "sender_id": "123456", "template_id": "1207161000000000005"}


def number(i: int) -> str:
    """A valid Indian mobile number per index (wraps after 10 million)."""
    return f"91995{i % 10_000_000:07d}"


def txn_text(i: int) -> str:
    return f"Payment of Rs {i} received for account AC{i}. Thank you. - SMSPNT"


def hi_text(i: int) -> str:
    return f"प्रिय ग्राहक{i}, आपका ऑर्डर {i} भेज दिया गया है। - SMSPNT"


def otp_text(i: int) -> str:
    return (f"{i % 1_000_000:06d} is your OTP to log in. It is valid for 10 minutes. "
            "Do not share it with anyone. - OTPSMS")


def promo_text(i: int) -> str:
    return f"Festive sale! Get {i % 90 + 10}% off on item {i}. Shop now at ex.in/{i} T&C apply."
