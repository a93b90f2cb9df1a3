"""Runtime configuration, read from the environment once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
DEFAULT_FORECAST_HORIZONS = (4, 24, 168)


class Settings(BaseSettings):
    """Every knob of the service; each field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Where embedded stores live.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset means SQLite in data_dir."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking store; unset means SQLite in data_dir."
    )
    log_level: str = "INFO"
    access_token_minutes: int = Field(default=60, ge=1, description="Bearer token lifetime.")
    refresh_token_days: int = Field(default=30, ge=1, description="Refresh token lifetime.")
    login_failure_limit: int = Field(
        default=5,
        ge=1,
        description="Failed logins of one email from one address before each further try "
        "waits, twice as long each time.",
    )
    login_lockout_minutes: int = Field(
        default=15, ge=1, description="The window failures count in, and the longest wait."
    )
    max_candle_age_hours: float = Field(
        default=3.0, gt=0, description="POST /predictions refuses coins with older candles."
    )
    login_delay_seconds: int = Field(
        default=30, ge=1, description="The first wait after login_failure_limit failures."
    )
    login_account_failure_limit: int = Field(
        default=50,
        ge=1,
        description="Failed logins of one email from all addresses together past which only "
        "addresses it has logged in from before may try (a guess spread over many addresses).",
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest request body; larger ones get 413."
    )
    body_read_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Longest wait for the next part of a body; then 408."
    )
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, description="uvicorn closes an idle keep-alive connection after this."
    )
    max_header_bytes: int = Field(
        default=16_384, ge=1024, description="uvicorn refuses request heads larger than this."
    )
    max_json_depth: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Deepest nesting of JSON a user writes (risk_rules, preferences); 422 past "
        "it. At most 64: a stored value deeper than that reads back as a note.",
    )
    max_json_bytes: int = Field(
        default=16_384, ge=64, description="Largest JSON a user writes, in bytes; 422 past it."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; none by default."
    )
    forecast_horizons: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_FORECAST_HORIZONS),
        description="Hours ahead the asset family is trained for, comma-separated: one "
        "version line each, and what POST /predictions accepts as horizon_hours.",
    )
    interval_level: float = Field(
        default=0.8, gt=0, lt=1, description="Central level of each price forecast's interval."
    )
    dask_scheduler_address: str | None = Field(
        default=None,
        description="Where `train` builds its rows and fits its trees when --cluster is not "
        "given: local:N or a scheduler URL (tcp://host:8786); unset: in-process.",
    )
    dask_worker_memory: str = Field(
        default="auto",
        description="Memory limit of each worker of a local:N cluster (e.g. 4GiB); auto shares "
        "the machine's memory among them.",
    )

    @field_validator("forecast_horizons", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("forecast_horizons")
    @classmethod
    def _distinct_hours(cls, hours: list[int]) -> list[int]:
        if not hours or any(not 1 <= hour <= 720 for hour in hours):
            raise ValueError("forecast horizons are whole hours from 1 to 720, at least one")
        return sorted(set(hours))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cryptopredict.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Where MLflow runs store their artifacts when the tracking store is ours."""
        return (self.data_dir / "mlartifacts").resolve()

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
