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
    # Units last in every name. Renamed settings keep their old environment names as aliases, so a
    # deployment's existing configuration goes on working.
    model_config = SettingsConfigDict(env_prefix="GRANTLINE_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    # No default: a tool that silently talked to whatever answers on port 5432 once showed an
    # auditor another database's (missing) tables. Unset, services refuse to start and console
    # scripts read `.grantline/env` (shared.config.cli).
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("GRANTLINE_DATABASE_URL", "DATABASE_URL"),
    )
    # The role migrations run as (it owns the schemas and tables); the service's own role, in
    # database_url, may only use them. Unset: migrations run as database_url (a developer's
    # single-role database).
    migration_database_url: str | None = None
    # Database roles belong to the whole server: <prefix>_owner and <prefix>_<service>
    # (shared.db.roles), so two deployments on one server keep theirs apart.
    db_role_prefix: str = "grantline"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("GRANTLINE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    operator_token: str = _DEV_PLACEHOLDER + "-operator"
    auditor_token: str = _DEV_PLACEHOLDER + "-auditor"
    # Webhook secrets are derived from this key per partner, so the secret itself never
    # travels in an event or sits in a second service's table.
    webhook_signing_key: str = _DEV_PLACEHOLDER + "-webhook"

    body_max_bytes: int = Field(default=64 * 1024, validation_alias=AliasChoices("body_max_bytes", "GRANTLINE_BODY_MAX_BYTES", "GRANTLINE_MAX_BODY_BYTES"))
    # Per partner key and per instance; 0 turns limiting off.
    partner_rate_per_second: float = Field(default=200.0, validation_alias=AliasChoices("partner_rate_per_second", "GRANTLINE_PARTNER_RATE_PER_SECOND", "GRANTLINE_PARTNER_RATE_PER_S"))
    partner_burst: int = 400
    consumer_batch_max: int = 500
    consumer_attempts_max: int = Field(default=3, validation_alias=AliasChoices("consumer_attempts_max", "GRANTLINE_CONSUMER_ATTEMPTS_MAX", "GRANTLINE_CONSUMER_MAX_ATTEMPTS"))
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

    # None: five working days on the mainland calendar, ending 17:00 Beijing time (services.notify.notice).
    notice_period_seconds: int | None = Field(default=None, validation_alias=AliasChoices("notice_period_seconds", "GRANTLINE_NOTICE_PERIOD_SECONDS", "GRANTLINE_NOTICE_PERIOD"))
    webhook_backoff_seconds: float = Field(default=2.0, validation_alias=AliasChoices("webhook_backoff_seconds", "GRANTLINE_WEBHOOK_BACKOFF_SECONDS", "GRANTLINE_WEBHOOK_BACKOFF"))
    webhook_attempts_max: int = Field(default=8, validation_alias=AliasChoices("webhook_attempts_max", "GRANTLINE_WEBHOOK_ATTEMPTS_MAX", "GRANTLINE_WEBHOOK_MAX_ATTEMPTS"))
    allow_private_callbacks: bool = False
    # The transparency log's Ed25519 signing key (services.notify.transparency) and the name of
    # this deployment, which is the log's origin line: grantline.notify/<deployment>.
    transparency_key: str | None = None
    deployment: str = "local"
    # Where a browser reaches each service's staff pages: the ledger's dashboard and notify's
    # objections page link to each other (the services share no routes). The local ports of `make up`.
    ledger_public_url: str = "http://127.0.0.1:8003"
    notify_public_url: str = "http://127.0.0.1:8004"
    log_level: str = "INFO"
    # The treasury's account every pain.001 debits (services.ledger.payments): its holder's name,
    # its number and its bank's 12-digit CNAPS code. Production refuses the placeholders.
    payer_name: str = _DEV_PLACEHOLDER + "-payer"
    payer_account: str = "0000000000000000"
    payer_bank_code: str = "000000000000"

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.env == "production":
            for name in ("operator_token", "auditor_token", "webhook_signing_key"):
                value = getattr(self, name)
                if value.startswith(_DEV_PLACEHOLDER) or len(value) < 16:
                    raise ValueError(f"GRANTLINE_{name.upper()} must be set to a real secret in production")
            if self.allow_private_callbacks:
                raise ValueError("GRANTLINE_ALLOW_PRIVATE_CALLBACKS is for test stacks; production refuses it")
            if not self.transparency_key:
                raise ValueError("GRANTLINE_TRANSPARENCY_KEY must be set in production (the log's signing key)")
            if not self.database_url:
                raise ValueError("DATABASE_URL must be set in production")
            if (self.payer_name.startswith(_DEV_PLACEHOLDER) or not self.payer_name.strip()
                    or not self.payer_account.strip() or set(self.payer_account) == {"0"}
                    or not (len(self.payer_bank_code) == 12 and self.payer_bank_code.isdigit())
                    or set(self.payer_bank_code) == {"0"}):
                raise ValueError("GRANTLINE_PAYER_NAME, GRANTLINE_PAYER_ACCOUNT and GRANTLINE_PAYER_BANK_CODE (12-digit "
                                 "CNAPS) must name the treasury's real account in production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
