"""What the workers know of the gateway account, shared through Redis: the credit balance (fetched from
get-sms-balance into the credit ledger) and the authentication hold.

The hold is one Redis key, ``{prefix}:hold:auth``: set by the sender when the gateway refuses the API key
(every lane then holds its batches instead of calling), cleared by ``release_due`` once get-sms-balance
proves the key works again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .channels import PACKAGES

if TYPE_CHECKING:
    from .context import Context


def refresh_balance(ctx: Context) -> dict[str, int]:
    """Fetch get-sms-balance and reset every package's available credits (minus in-flight ones);
    returns the available credits per package. Raises the gateway's errors."""
    bal = ctx.client.balance()
    return {package: ctx.ledger.set_balance(package, int(bal.for_package(package))) for package in PACKAGES}


def auth_hold_key(prefix: str) -> str:
    return f"{prefix}:hold:auth"


def hold_for_authentication(ctx: Context) -> None:
    """The gateway refused the API key: every lane holds its batches until the key works again."""
    ctx.redis.set(auth_hold_key(ctx.settings.redis_prefix), "1")


def held_for_authentication(ctx: Context) -> bool:
    return bool(ctx.redis.exists(auth_hold_key(ctx.settings.redis_prefix)))


def release_authentication_hold(ctx: Context) -> None:
    ctx.redis.delete(auth_hold_key(ctx.settings.redis_prefix))
