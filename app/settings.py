"""Roost's configuration, read once from the environment.

Every variable has a safe development default. In production the secrets must be given; in
development they are generated once and kept under ``ROOST_DATA_DIR`` so tokens survive restarts.
"""

import json
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets that development generates for itself and production must be given.
GENERATED_SECRETS = ("jwt_secret",)


class ConfigurationError(Exception):
    """The environment does not describe a Roost that can start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    env: Literal["development", "production"] = Field("development", validation_alias="ROOST_ENV")
    data_dir: Path = Field(Path(".roost"), validation_alias="ROOST_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    jwt_secret: SecretStr | None = Field(None, validation_alias="JWT_SECRET")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        ["http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173"],
        validation_alias="ROOST_CORS_ORIGINS",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="ROOST_LOG_LEVEL"
    )
    # Limits on every request.
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="ROOST_MAX_BODY_BYTES")
    request_timeout_seconds: float = Field(
        15.0, gt=0, validation_alias="ROOST_REQUEST_TIMEOUT_SECONDS"
    )
    statement_timeout_ms: int = Field(5_000, gt=0, validation_alias="ROOST_STATEMENT_TIMEOUT_MS")
    max_query_depth: int = Field(12, gt=0, validation_alias="ROOST_MAX_QUERY_DEPTH")
    max_aliases: int = Field(30, gt=0, validation_alias="ROOST_MAX_ALIASES")
    max_tokens: int = Field(4_000, gt=0, validation_alias="ROOST_MAX_TOKENS")
    db_pool_size: int = Field(10, gt=0, validation_alias="ROOST_DB_POOL_SIZE")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pg"

    def require_jwt_secret(self) -> str:
        if self.jwt_secret is None:
            raise ConfigurationError("JWT_SECRET is missing; settings come from load_settings()")
        return self.jwt_secret.get_secret_value()


def _complete_development_secrets(settings: Settings) -> Settings:
    """Fill missing secrets from ``$ROOST_DATA_DIR/secrets.json``, creating them once."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if any(name not in stored for name in missing):
        for name in missing:
            stored.setdefault(name, secrets.token_urlsafe(48))
        # Written owner-only, then renamed, so a crash never leaves half a file.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(stored, file)
        tmp.replace(path)
    return settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})


def load_settings() -> Settings:
    """Read the environment and check it is complete for the chosen ``ROOST_ENV``."""
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
        )
        raise ConfigurationError(f"The configuration is not valid: {problems}") from None
    if settings.is_production:
        missing = [
            alias
            for name, alias in (("database_url", "DATABASE_URL"), ("jwt_secret", "JWT_SECRET"))
            if getattr(settings, name) is None
        ]
        if missing:
            raise ConfigurationError(
                f"ROOST_ENV=production needs {', '.join(missing)} to be set; "
                "refusing to start without them."
            )
        if len(settings.require_jwt_secret()) < 32:
            raise ConfigurationError("JWT_SECRET must be at least 32 characters long.")
        return settings
    return _complete_development_secrets(settings)


@cache
def get_settings() -> Settings:
    return load_settings()
