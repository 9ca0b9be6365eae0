"""One settings class for every service, read from the environment (prefix GRANTLINE_).

DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS are also read without the prefix, because
`make up`, docker compose and production platforms hand them over under those names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_PLACEHOLDER = "dev-only-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRANTLINE_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("GRANTLINE_DATABASE_URL", "DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("GRANTLINE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    operator_token: str = _DEV_PLACEHOLDER + "-operator"
    auditor_token: str = _DEV_PLACEHOLDER + "-auditor"
    # Webhook secrets are derived from this key per partner, so the secret itself never
    # travels in an event or sits in a second service's table.
    webhook_signing_key: str = _DEV_PLACEHOLDER + "-webhook"

    max_body_bytes: int = 64 * 1024
    # Per partner key and per instance; 0 turns limiting off.
    partner_rate_per_s: float = 200.0
    partner_burst: int = 400
    consumer_batch_max: int = 500
    consumer_max_attempts: int = 3
    # How soon a dead consumer's partitions move to a live one (and how long a join waits).
    consumer_session_timeout_ms: int = 10_000
    relay_batch_max: int = 500
    relay_poll_seconds: float = 0.5
    topic_partitions: int = 6
    # Prefixed to every topic and consumer group: lets several stacks (or test modules) share one broker.
    topic_namespace: str = ""
    # How often relays compare the broker's end offsets with what it acknowledged, and how far
    # back they re-publish when it has forgotten (an in-memory broker restarted).
    amnesia_check_seconds: float = 5.0
    redrive_window_seconds: int = 86_400

    notice_period: int = 432_000
    webhook_backoff: float = 2.0
    webhook_max_attempts: int = 8
    allow_private_callbacks: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.env == "production":
            for name in ("operator_token", "auditor_token", "webhook_signing_key"):
                value = getattr(self, name)
                if value.startswith(_DEV_PLACEHOLDER) or len(value) < 16:
                    raise ValueError(f"GRANTLINE_{name.upper()} must be set to a real secret in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
