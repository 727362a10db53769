"""Secrets and URLs still holding the placeholders of .env.example or the Kubernetes secret template are
refused when Settings are built (every entry point builds them at start)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatcher.settings import Settings

CASES = [
    ({"webhook_secret": "change-me-webhook-secret"}, "WEBHOOK_SECRET"),
    ({"flower_password": "change-me-flower-password"}, "FLOWER_PASSWORD"),
    ({"redis_url": "redis://:change-me-redis-password@redis:6379/0"}, "REDIS_URL"),
    ({"database_url": "postgresql+psycopg://smspoint:change-me-postgres-password@postgres/smspoint"},
     "DATABASE_URL"),
    ({"smspoint_api_key": "REPLACE_ME"}, "SMSPOINT_API_KEY"),
]


@pytest.mark.parametrize(("values", "name"), CASES)
def test_placeholders_are_refused_naming_the_setting(values: dict[str, str], name: str) -> None:
    """Each placeholder is refused with the setting's name, and the error does not echo the value."""
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    text = str(err.value)
    assert f"{name} still holds the placeholder" in text
    assert "redis-password@" not in text and "postgres-password@" not in text


def test_real_values_are_accepted() -> None:
    """Generated secrets (and the simulator's public test key) pass."""
    s = Settings(_env_file=None, webhook_secret="9f2c" * 8, flower_password="x7" * 8,  # type: ignore[call-arg]
                 redis_url="redis://:3b1d@redis:6379/0", smspoint_api_key="simulator-key")
    assert s.webhook_secret.get_secret_value() == "9f2c" * 8
