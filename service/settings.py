"""Service settings: environment variables with the ``SAFEZONE_`` prefix (see README)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.settings import PROJECT_ROOT


class Settings(BaseSettings):
    """Everything the API and the worker read from the environment."""

    model_config = SettingsConfigDict(env_prefix="SAFEZONE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = PROJECT_ROOT / "data"
    rules_dir: Path | None = None
    default_adcode: str | None = None
    school_accuracy_m: float = Field(5.0, ge=0, description="default positional accuracy of OSM school geometry")
    token_cache_s: float = Field(
        5.0,
        ge=0,
        description="how long an API process remembers a looked-up token (a revocation elsewhere takes "
        "effect within it; 0: ask the database on every request)",
    )
    page_limit_default: int = 100
    page_limit_max: int = 1000
    log_level: str = "INFO"
    log_json: bool = True
    tianditu_key: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @field_validator("default_adcode")
    @classmethod
    def _adcode(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 6 or not value.isdigit()):
            msg = f"SAFEZONE_DEFAULT_ADCODE must be a 6-digit adcode, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 16 or value.lower() in {"changeme", "change-me", "secret"}):
            msg = "SAFEZONE_WEBHOOK_SECRET must be a real secret of at least 16 characters"
            raise ValueError(msg)
        return value

    @property
    def resolved_rules_dir(self) -> Path:
        return self.rules_dir or self.data_dir / "rules"

    @property
    def static_dir(self) -> Path:
        return self.data_dir / "static"
