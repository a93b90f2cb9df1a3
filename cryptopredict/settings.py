"""Runtime configuration, read from the environment once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


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
        default=5, ge=1, description="Failed logins of one email before it is locked out."
    )
    login_lockout_minutes: int = Field(default=15, ge=1, description="How long a lockout lasts.")
    max_candle_age_hours: float = Field(
        default=3.0, gt=0, description="POST /predictions refuses coins with older candles."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; none by default."
    )

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
