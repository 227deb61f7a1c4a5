"""Database settings (environment only)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """Where the database is.

    ``DATABASE_URL`` points every command at an external PostGIS (production). Without it the project
    manages a local PostGIS cluster under ``SAFEZONE_STATE_DIR`` (default ``<project>/.safezone``).
    """

    model_config = SettingsConfigDict(env_prefix="SAFEZONE_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SAFEZONE_DATABASE_URL")
    )
    state_dir: Path = PROJECT_ROOT / ".safezone"
    db_name: str = "safezone"
    pool_size: int = 10
    pool_timeout_s: float = 1.0
    statement_timeout_ms: int = 60_000
