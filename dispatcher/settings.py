"""The one settings object. Built once at an entry point (CLI, Celery app, producer) and passed down."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .channels import DEFAULT_CHANNEL_MAP, Channel

MAX_BATCH = 2000  # the gateway's documented limit per send-bulk-sms call
#: Placeholders of .env.example and deploy/k8s/secret.template.yaml, refused in secrets and URLs.
PLACEHOLDERS = ("change-me", "replace_me")


class Settings(BaseSettings):
    """Every setting, read from the environment (and an optional ``.env``). See README for the table."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    # --- gateway
    smspoint_api_key: SecretStr = Field(default=SecretStr(""), description="TheSMSPoint API key (secret)")
    smspoint_base_url: str = Field(default="https://thesmspoint.com/api/v1",
                                   description="Gateway base URL; point at the simulator to test offline")
    connect_timeout: float = Field(default=3.05, gt=0, description="Seconds to connect to the gateway")
    read_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for the gateway's answer")
    channel_map: Annotated[dict[str, int], NoDecode] = Field(
        default=dict(DEFAULT_CHANNEL_MAP),
        validation_alias=AliasChoices("SMSPOINT_CHANNEL_MAP", "CHANNEL_MAP", "channel_map"),
        description="Gateway channel number per named channel, e.g. 'transactional=1,promotional=2,otp=3'")

    # --- infrastructure
    redis_url: str = Field(default="redis://localhost:6379/0", description="Redis for lanes, credits, limits")
    redis_prefix: str = Field(default="smspoint", description="Prefix of every Redis key the project owns")
    broker_url: str | None = Field(default=None, description="Celery broker; defaults to REDIS_URL")
    broker_key_prefix: str = Field(default="", description="Prefix of Celery's own Redis keys (isolation)")
    database_url: str = Field(default="sqlite:///./smspoint.db",
                              description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg://...")

    # --- batching
    batch_size: int = Field(default=MAX_BATCH, ge=1, le=MAX_BATCH, description="Recipients per bulk call")
    flush_interval_otp_ms: int = Field(default=0, ge=0, description="OTP lane: max wait to fill a batch")
    flush_interval_transactional_ms: int = Field(default=200, ge=0, description="Transactional lane wait")
    flush_interval_promotional_ms: int = Field(default=1000, ge=0, description="Promotional lane wait")
    otp_inline_send: bool = Field(default=True, description="OTP collector makes its calls itself")
    otp_inline_threads: int = Field(default=4, ge=1, le=10,
                                    description="OTP collector: calls made at the same time")
    otp_priority_yield_ms: int = Field(
        default=60, ge=0, le=5000,
        description="A bulk call waits at most this long while OTPs wait or are in flight (0: off)")
    otp_priority_stale_ms: int = Field(
        default=5000, ge=100, description="An unanswered OTP older than this no longer holds bulk back")

    send_bulk_encoding: Literal["json", "form"] = Field(
        default="json", description="send-bulk-sms request body: json (the C# example) or form (the PHP one)")

    # --- gateway protection
    rate_limit_calls_per_s: float = Field(default=50.0, gt=0, description="Gateway calls/s, all workers")
    rate_limit_parts_per_s: float = Field(default=100_000.0, gt=0, description="Message parts/s, all workers")
    retry_max_attempts: int = Field(default=5, ge=1, description="Attempts for provably-unsent failures")
    retry_max_elapsed_s: float = Field(default=60.0, gt=0, description="Give up retrying after this long")
    balance_refresh_s: float = Field(default=60.0, gt=0, description="Refresh credit balance this often")
    catalog_refresh_s: float = Field(default=300.0, gt=0, description="Refresh sender ids / templates")

    # --- DLT / schedule
    default_region: str = Field(default="IN", description="Region for numbers without a country code")
    timezone: str = Field(default="Asia/Kolkata", description="Time zone of the promotional window")
    promo_window_start: time = Field(default=time(9, 0), description="Promotional sends allowed from")
    promo_window_end: time = Field(default=time(21, 0), description="Promotional sends allowed until")
    smart_encoding: bool = Field(default=False, description="Replace look-alikes so texts stay GSM-7")

    # --- repair
    stale_sending_after_s: float = Field(default=300.0, gt=0, description="'sending' older -> unknown")
    requeue_after_s: float = Field(default=120.0, gt=0, description="queued but unseen -> pushed again")
    gateway_down_retry_s: float = Field(default=30.0, gt=0, description="held (gateway_down) -> retried")
    republish_after_s: float = Field(default=60.0, gt=0, description="pending batch task lost -> republish")
    tick_interval_s: float = Field(default=1.0, gt=0, description="Beat: wake collectors of non-empty lanes")
    release_interval_s: float = Field(default=5.0, gt=0, description="Beat: release scheduled/held messages")
    sweep_interval_s: float = Field(default=15.0, gt=0, description="Beat: repair sweep period")
    hooks_interval_s: float = Field(default=5.0, gt=0, description="Beat: deliver pending hooks")

    # --- delivery-report sync
    sync_interval_s: float = Field(default=30.0, gt=0, description="Beat period of the report sync")
    sync_horizon_h: float = Field(default=72.0, gt=0, description="Give up waiting for a final report")
    sync_calls_per_run: int = Field(default=200, ge=1, description="Max status calls per sync run")
    sync_backoff_min: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(1.0, 2.0, 5.0, 10.0, 30.0),
        description="Minutes between the first report polls of a job, e.g. '1,2,5,10,30'")
    sync_poll_every_min: float = Field(default=60.0, gt=0,
                                       description="Minutes between polls after the backoff list")
    expired_is_final: bool = Field(default=False,
                                   description="Treat the gateway's 'Expired' as final (documented: pending)")
    unconfirmed_polls: int = Field(default=3, ge=1,
                                   description="Reports without an unconfirmed message before it is unknown")

    # --- hooks
    hook_callable: str | None = Field(default=None, description="dotted.path:function called on final state")
    webhook_url: str | None = Field(default=None, description="URL POSTed a signed JSON body on final state")
    webhook_secret: SecretStr = Field(default=SecretStr(""), description="HMAC-SHA256 key for webhooks")

    # --- operators
    flower_address: str = Field(default="127.0.0.1", description="Flower bind address")
    flower_port: int = Field(default=5555, description="Flower port")
    flower_user: str = Field(default="", description="Flower basic-auth user")
    flower_password: SecretStr = Field(default=SecretStr(""), description="Flower basic-auth password")
    metrics_port: int = Field(default=9808, description="Prometheus exporter port (0 = off)")

    # --- HTTP API (smsdispatch api)
    api_host: str = Field(default="127.0.0.1", description="HTTP API bind address")
    api_port: int = Field(default=8080, ge=1, le=65535, description="HTTP API port")
    api_max_body_bytes: int = Field(default=5_000_000, ge=1024, description="HTTP API: largest request body")
    api_max_bulk_rows: int = Field(default=10_000, ge=1, description="HTTP API: most messages per bulk POST")
    api_rate_per_s: float = Field(default=100.0, gt=0,
                                  description="HTTP API: requests/s of a key created without --rate")
    api_key_cache_s: float = Field(default=5.0, ge=0,
                                   description="HTTP API: seconds a key lookup is reused (revocation delay)")
    api_commit_group_max: int = Field(default=256, ge=1, le=10_000,
                                      description="HTTP API: most single-message POSTs of one process "
                                                  "committed in one transaction (1: each alone)")

    # --- DLT links, opt-outs and the breaker on bad outcomes
    dlt_links: Literal["off", "typed", "strict"] = Field(
        default="typed", description="Whitelist check of URLs / call-back numbers: off, typed ({#url#}, "
        "{#urlott#}, {#cbn#} values) or strict (anywhere in the text)")
    dlt_url_whitelist: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Whitelisted URL prefixes, comma-separated (e.g. smspoint.in/t)")
    dlt_cbn_whitelist: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Whitelisted call-back numbers, comma-separated")
    dlt_whitelist_file: str | None = Field(
        default=None, description="File of whitelist entries ('url X' / 'cbn N' lines), re-read on change")
    dlt_whitelist_db: bool = Field(
        default=True, description="Whitelist entries from the database too ('smsdispatch whitelist add')")
    dlt_whitelist_reload_s: float = Field(
        default=2.0, ge=0, le=3600, description="Seconds between two looks at the whitelist file and "
        "database in each process (how soon an added or removed entry counts everywhere)")
    breaker_window: int = Field(default=200, ge=1, description="Breaker: recent messages judged per group")
    breaker_threshold: float = Field(default=0.2, gt=0, le=1,
                                     description="Breaker: share of bad outcomes that opens it")
    breaker_min_messages: int = Field(default=20, ge=1,
                                      description="Breaker: judge a group only after this many messages")
    breaker_scan_interval_s: float = Field(default=30.0, gt=0,
                                           description="Beat: count undelivered reports with DLT remarks")

    # --- retention (finished rows only; 0 keeps a table for ever; dispatcher/retention.py)
    retention_days: float = Field(default=30.0, ge=0,
                                  description="Final messages (with their events) older are purged; 0 = keep")
    retention_days_batches: float = Field(default=7.0, ge=0,
                                          description="Finished batches and closed gateway jobs older are "
                                                      "purged; 0 = keep")
    retention_days_hooks: float = Field(default=7.0, ge=0,
                                        description="Delivered hook rows older are purged; 0 = keep")
    retention_interval_s: float = Field(default=600.0, gt=0, description="Beat: purge period")
    retention_chunk_rows: int = Field(default=1000, ge=1, le=10_000,
                                      description="Rows a purge deletes per transaction")
    retention_rows_per_s: float = Field(default=2000.0, gt=0,
                                        description="Most rows a purge deletes per second (it rests between "
                                                    "transactions)")
    retention_run_s: float = Field(default=120.0, gt=0,
                                   description="Longest purge run; the next run goes on from there")

    @field_validator("channel_map", mode="before")
    @classmethod
    def _parse_channel_map(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                import json

                return json.loads(text)
            pairs = [p for p in text.split(",") if p.strip()]
            out: dict[str, int] = {}
            for pair in pairs:
                name, sep, num = pair.partition("=")
                if not sep:
                    raise ValueError(f"channel_map entry {pair!r} is not name=number")
                out[name.strip().lower()] = int(num)
            return out
        return value

    @field_validator("sync_backoff_min", mode="before")
    @classmethod
    def _parse_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            value = [p for p in value.replace(";", ",").split(",") if p.strip()]
        if isinstance(value, list | tuple):
            out = tuple(float(v) for v in value)
            if not out or any(not v > 0 for v in out):
                raise ValueError("sync_backoff_min must list one or more minutes, each > 0")
            return out
        return value

    @field_validator("dlt_url_whitelist", "dlt_cbn_whitelist", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        names = {c.value for c in Channel}
        if set(self.channel_map) != names:
            raise ValueError(f"channel_map must name exactly {sorted(names)}, got {sorted(self.channel_map)}")
        if len(set(self.channel_map.values())) != len(names):
            raise ValueError("channel_map numbers must be distinct")
        if self.stale_sending_after_s <= self.longest_send_s:
            raise ValueError(
                f"stale_sending_after_s ({self.stale_sending_after_s:g} s) must be longer than a send "
                f"with all its retries can last (retry_max_elapsed_s + connect_timeout + read_timeout = "
                f"{self.longest_send_s:g} s): the sweeper would mark a batch unknown while a worker "
                f"still retries it")
        return self

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        for name in ("retention_days", "retention_days_hooks"):
            days = getattr(self, name)
            if days and days * 24 <= self.sync_horizon_h:
                raise ValueError(f"{name} ({days:g} days) must be 0 (keep) or longer than sync_horizon_h "
                                 f"({self.sync_horizon_h:g} h): hook rows of failed messages are made "
                                 "within that horizon, and a purged one would be made (and fired) again")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        """A secret still holding the placeholder of .env.example or the Kubernetes secret template is a
        deployment that was never configured: refuse to start rather than run with a published password."""
        for name in ("smspoint_api_key", "webhook_secret", "flower_password", "redis_url", "broker_url",
                     "database_url"):
            value = getattr(self, name)
            text = value.get_secret_value() if isinstance(value, SecretStr) else value or ""
            found = next((p for p in PLACEHOLDERS if p in text.lower()), None)
            if found:
                raise ValueError(f"{name.upper()} still holds the placeholder {found!r} from .env.example "
                                 "or secret.template.yaml: set a real value (e.g. openssl rand -hex 32)")
        return self

    # ----------------------------------------------------------------- helpers

    @property
    def longest_send_s(self) -> float:
        """The longest a batch stays `sending` in a live worker: the retry budget (the last attempt starts
        within it) plus that attempt's connect and read timeouts."""
        return self.retry_max_elapsed_s + self.connect_timeout + self.read_timeout

    def flush_interval_s(self, lane: str) -> float:
        """How long a lane waits to fill a batch before flushing a partial one."""
        ms: int = getattr(self, f"flush_interval_{lane}_ms")
        return ms / 1000.0

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (secrets included), for child processes (workers,
        beat) that must build the same Settings. Unset optional fields are left out."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            if isinstance(value, dict):
                value = ",".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, tuple):
                value = ",".join(f"{v:g}" for v in value)
            elif isinstance(value, list):
                value = ",".join(value)
            env["SMSPOINT_CHANNEL_MAP" if name == "channel_map" else name.upper()] = str(value)
        return env

    @property
    def celery_broker(self) -> str:
        return self.broker_url or self.redis_url

    def broker_transport_options(self) -> dict[str, object]:
        opts: dict[str, object] = {"visibility_timeout": 3600}
        if self.broker_key_prefix:
            opts["global_keyprefix"] = self.broker_key_prefix
        return opts


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once on first use (entry points may build their own)."""
    return Settings()
