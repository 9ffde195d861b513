"""Settings from the environment contract only (same names on AWS, filled from Secrets Manager / SSM)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("app.settings")

# Values that mean "nobody set this": refused outside `local` (warned about locally).
PLACEHOLDER_SECRETS = frozenset(
    {"", "changethis", "change-me", "changeme", "secret", "password", "test", "dev", "pw", "placeholder"}
)
MIN_SECRET_KEY_LENGTH = 32

# Origins the local frontend uses: any subdomain of localhost / 127.0.0.1 on any port.
LOCAL_CORS_ORIGIN_REGEX = r"^https?://([a-z0-9-]+\.)*(localhost|127\.0\.0\.1)(:\d+)?$"


class Settings(BaseSettings):
    """The app's whole configuration; every field maps to one upper-case environment variable."""

    # hide_input_in_errors: a refused configuration must not print the secrets it was given.
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    app_env: Literal["local", "staging", "production"] = "local"
    api_url: str = "http://127.0.0.1:8000"

    database_url: str
    migrator_database_url: str | None = None  # Alembic only; the app never connects with it
    redis_url: str

    aws_endpoint_url: str | None = None  # set locally (the emulator); absent on AWS
    aws_region: str = "me-south-1"
    s3_bucket: str
    ses_sender: str
    ses_configuration_set: str | None = None

    cognito_user_pool_id: str
    cognito_client_id: str
    cognito_client_secret: SecretStr | None = None
    cognito_issuer: str | None = None  # defaults to AWS's issuer for the pool
    cognito_jwks_url: str | None = None  # defaults to {issuer}/.well-known/jwks.json
    # Comma-separated Cognito groups (Owner, Admin) whose roles require TOTP MFA: Cognito has no per-group MFA,
    # so the app enforces it. Empty: no role requires it.
    cognito_mfa_required_groups: str = ""

    app_secret_key: SecretStr
    cors_origin_regex: str | None = None

    # Tunables with production defaults; not part of the harness contract.
    rate_limit_per_minute: int = 600
    presign_expiry_seconds: int = 900
    max_upload_bytes: int = 25 * 1024 * 1024
    ai_provider: Literal["local"] = "local"
    ai_default_soft_limit_tokens: int = 50_000
    ai_default_hard_limit_tokens: int = 100_000
    ai_catalog_cache_seconds: int = 3600
    celery_visibility_timeout: int = 30
    outbox_republish_seconds: float = 30.0
    outbox_relay_interval_seconds: float = 2.0
    tenant_base_domain: str | None = None  # when set, only `{slug}.{tenant_base_domain}` hosts name a tenant

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        problems = placeholder_problems(self)
        if not problems:
            return self
        message = "placeholder secrets: " + "; ".join(problems)
        if self.app_env == "local":
            logger.warning("%s (accepted because APP_ENV=local)", message)
            return self
        raise ValueError(f"{message} (refused because APP_ENV={self.app_env}; set real values)")

    @property
    def issuer(self) -> str:
        """The `iss` every accepted token must carry."""
        return (
            self.cognito_issuer
            or f"https://cognito-idp.{self.aws_region}.amazonaws.com/{self.cognito_user_pool_id}"
        )

    @property
    def mfa_required_groups(self) -> frozenset[str]:
        return frozenset(g.strip() for g in self.cognito_mfa_required_groups.split(",") if g.strip())

    @property
    def jwks_url(self) -> str:
        return self.cognito_jwks_url or f"{self.issuer}/.well-known/jwks.json"

    @property
    def async_database_url(self) -> str:
        return to_driver_url(self.database_url, "asyncpg")

    @property
    def sync_database_url(self) -> str:
        return to_driver_url(self.database_url, "psycopg")

    @property
    def cors_regex(self) -> str | None:
        if self.cors_origin_regex:
            return self.cors_origin_regex
        return LOCAL_CORS_ORIGIN_REGEX if self.app_env == "local" else None


def placeholder_problems(settings: Settings) -> list[str]:
    """Name every secret that still holds a placeholder (values are never included)."""
    problems: list[str] = []
    secret_key = settings.app_secret_key.get_secret_value()
    if secret_key.lower() in PLACEHOLDER_SECRETS or len(secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(f"APP_SECRET_KEY is a placeholder or shorter than {MIN_SECRET_KEY_LENGTH} characters")
    client_secret = settings.cognito_client_secret
    if client_secret is not None and client_secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
        problems.append("COGNITO_CLIENT_SECRET is a placeholder")
    for name, url in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url)):
        password = urlsplit(url).password
        if password is not None and password.lower() in PLACEHOLDER_SECRETS:
            problems.append(f"the password in {name} is a placeholder")
    return problems


def to_driver_url(url: str, driver: Literal["asyncpg", "psycopg"]) -> str:
    """`postgresql://…` → `postgresql+{driver}://…`; libpq's `sslmode` becomes asyncpg's `ssl`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"expected a postgresql:// URL, got scheme {parts.scheme!r}")
    query = parts.query
    if driver == "asyncpg" and "sslmode" in query:
        query = urlencode([("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(query)])
    return urlunsplit((f"postgresql+{driver}", parts.netloc, parts.path, query, parts.fragment))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use (never at import time)."""
    return Settings()  # required fields come from the environment


class MigrationSettings(BaseSettings):
    """What Alembic needs: the owner's URL, and the runtime URL whose user receives the grants."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    migrator_database_url: str
    database_url: str | None = None

    @property
    def runtime_role(self) -> str:
        """The role the app connects as (the user of DATABASE_URL; `app_user` when unset)."""
        username = urlsplit(self.database_url).username if self.database_url else None
        return username or "app_user"
