"""Server settings, read once from the environment (``WATCHKEEP_*``) and passed explicitly.

There is no module-level settings object: the CLI builds one and hands it to the app
factory, so tests can run several differently configured apps in one process.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A list setting read from one environment variable as a comma-separated string.
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything the server, ingest and CLI can be told."""

    model_config = SettingsConfigDict(env_prefix="WATCHKEEP_", extra="ignore")

    home: Path = Field(default=Path(".watchkeep"), description="Data folder (SQLite file, spool).")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite in $WATCHKEEP_HOME/watchkeep.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8700
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    otlp_grpc_port: int = Field(
        default=4317, ge=0, le=65535, description="OTLP/gRPC port of `watchkeep server` (0 or empty: off)."
    )
    ingest_queue_max_spans: int = Field(default=200_000, ge=1)
    ingest_commit_max_spans: int = Field(default=20_000, ge=1)
    ingest_decode_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes decoding large exports; default: one a core, at most four, none on one core.",
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between young garbage collections in server, gateway and decode "
        "processes, which also freeze their start-up objects (0: CPython's defaults).",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    sqlite_writer_cache_mib: int = Field(
        default=64,
        ge=1,
        description="Page cache of the ingest writer's SQLite connection (others have 16 MiB): "
        "random trace ids spread inserts over whole indexes. `watchkeep gateway` defaults to 16.",
    )
    prices_file: Path | None = Field(
        default=None, description="JSON or YAML file of model prices merged over the shipped table."
    )
    search_index: bool = Field(
        default=True, description="Index prompt and response text for `q` (off: `q` answers 503)."
    )
    search_index_budget: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Share of one core the search indexer may use a second; default 0.1 on SQLite "
        "(it holds ingest's write lock), 0.25 on PostgreSQL.",
    )
    search_index_max_chars: int = Field(
        default=2000, ge=1, le=100_000, description="Characters of each message indexed for search."
    )
    rest_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Body cap of every REST route (OTLP and gateway have their own).",
    )
    dataset_upload_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Body cap of a dataset file upload (POST /api/v1/datasets/{name}/versions); "
        "the file is parsed in memory, so this bounds what one upload can cost.",
    )
    operator_token: str | None = Field(
        default=None,
        min_length=16,
        description="The operator's bearer token: the all-projects Prometheus scrape (/metrics) and "
        "process-wide resource samples. Without one, only loopback clients get them.",
    )
    key_cache_seconds: float = Field(default=30.0, ge=0, description="How long a verified key is trusted.")
    egress_allow_networks: CommaList = Field(
        default_factory=list,
        description="Networks (CIDR, comma-separated) that tenant-named URLs may reach although they are "
        "loopback, private or link-local: API gateway routes and alert channels.",
    )
    smtp_verify_tls: bool = Field(
        default=True, description="STARTTLS to alert SMTP hosts checks certificates."
    )

    # --- per-project quotas (docs/security.md) ---
    quota_routes: int = Field(default=100, ge=0, description="Routes a project may create through the API.")
    quota_monitors: int = Field(default=200, ge=0)
    quota_evaluators: int = Field(default=50, ge=0, description="Online evaluators of a project.")
    quota_alert_channels: int = Field(default=50, ge=0)
    quota_keys: int = Field(default=1000, ge=0, description="Active keys a project admin may hold (the API).")
    console: bool = Field(default=True, description="Serve the web console at / (watchkeep server).")
    console_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 90, description="A console session ends this long after its last use."
    )
    console_secure_cookies: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Mark console cookies Secure: auto = when the request came over https.",
    )
    login_lockout_after: int = Field(
        default=5, ge=1, le=1000, description="Failed logins in a row that lock an account."
    )
    login_lockout_minutes: float = Field(
        default=15.0, gt=0, le=24 * 60, description="How long a locked account stays locked."
    )
    quota_reference_rows: int = Field(default=100_000, ge=0, description="Rows of a pinned drift reference.")
    monitor_min_interval_seconds: float = Field(default=30.0, ge=0, description="Shortest monitor interval.")
    evaluate_now_per_minute: int = Field(
        default=30,
        ge=1,
        description="On-demand evaluations (monitors, evaluators) a project may run a minute.",
    )
    upgrade_on_start: bool = True

    # --- gateway (docs/gateway.md) ---
    gateway_enabled: bool = Field(default=True, description="Mount the gateway in `watchkeep server`.")
    gateway_config: Path | None = Field(default=None, description="Routes YAML file.")
    gateway_default_model: bool = Field(
        default=True, description="Without a routes file, serve the embedded SmolLM2 as 'smollm2'."
    )
    gateway_port: int = 8701
    gateway_max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    gateway_capture_content: bool = Field(default=True, description="Store prompts and replies in traces.")
    gateway_cache_max_entries: int = Field(default=10_000, ge=0)
    gateway_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    gateway_cache_max_ttl_s: float = Field(
        default=3600.0, gt=0, description="Ceiling on a route's cache ttl_s (longer ones are refused)."
    )
    gateway_requests_per_minute: int | None = Field(default=None, ge=1, description="Per key.")
    gateway_tokens_per_minute: int | None = Field(default=None, ge=1, description="Per key.")
    gateway_shadow_concurrency: int = Field(default=64, ge=0)
    gateway_route_sync_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How often a process looks for route edits and alias moves made through another one.",
    )
    canary_check_seconds: float = Field(
        default=10.0, ge=0, description="How often the worker looks at running canaries (0: never)."
    )
    gateway_spool_dir: Path | None = Field(
        default=None,
        description="Gateway traces the store cannot take yet wait here (default $WATCHKEEP_HOME/gateway-spool).",
    )
    gateway_spool_max_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=0, description="Gateway trace spool cap; past it spans are dropped."
    )
    redis_url: str | None = Field(default=None, description="Shares rate-limit buckets across replicas.")

    # --- monitoring (docs/monitoring.md) ---
    worker_enabled: bool = Field(default=True, description="Run the monitor loop inside `watchkeep server`.")
    worker_tick_seconds: float = Field(default=5.0, gt=0, description="Pause between monitor passes.")
    monitor_pass_budget_s: float = Field(
        default=2.0, ge=0, description="Seconds a monitor pass may spend scanning spans for references."
    )
    resource_sample_seconds: float = Field(default=15.0, gt=0, description="CPU/memory/GPU sample period.")
    process_role: str = Field(default="server", max_length=64, description="Process label in metrics.")
    metrics_max_label_values: int = Field(default=50, ge=1, description="Cap per label on /metrics.")
    # --- privacy and hardening (issue 16; docs/privacy.md) ------------------------
    secure: bool = Field(
        default=False, description="Refuse to start without the encryption key (and other production checks)."
    )
    encryption_key: SecretStr | None = Field(
        default=None, description="Base64 of 32 bytes: payloads and secrets are stored AES-256-GCM encrypted."
    )
    encryption_key_file: Path | None = Field(default=None, description="A file holding the key (base64).")
    encryption_previous_keys: SecretStr | None = Field(
        default=None, description="Comma-separated earlier keys (base64), still read until rotated away."
    )
    pii_redaction: bool = Field(
        default=True, description="Mask PII in payloads on ingest, in the gateway, scores and datasets."
    )
    pii_hash_key: SecretStr | None = Field(
        default=None,
        description="Key of the 'hash' PII action (default: derived from the encryption key "
        "or a key file kept under home).",
    )
    pii_presidio: bool = Field(default=False, description="Also find names and places with Presidio.")
    retention_check_seconds: float = Field(
        default=3600.0, ge=0, description="How often the worker enforces retention periods (0: never)."
    )
    retention_in_server: bool = Field(
        default=True,
        description="Enforce retention inside `watchkeep server` too (off: only `watchkeep worker` does).",
    )
    cors_allow_origins: CommaList = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (default: none)."
    )
    oidc_issuer: str | None = Field(default=None, max_length=2048, description="OpenID Connect issuer URL.")
    oidc_client_id: str | None = Field(default=None, max_length=512)
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = Field(default="openid email profile", max_length=512)

    @field_validator("egress_allow_networks", "cors_allow_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("otlp_grpc_port", mode="before")
    @classmethod
    def _empty_port(cls, value: object) -> object:
        return 0 if isinstance(value, str) and not value.strip() else value

    @field_validator("egress_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'watchkeep.db').resolve()}"
