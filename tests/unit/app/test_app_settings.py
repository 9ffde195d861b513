"""Settings: placeholder secrets are refused outside local; URLs are converted for each driver."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.settings import Settings, to_driver_url
from app.workers.config import TRANSPORT, celery_config, redelivery_sweep

REAL_SECRET = "k3Y-" + "a1b2c3d4" * 6


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "staging",
        "database_url": "postgresql://app_user:S7rong-db-pass@db.internal:5432/saas",
        "redis_url": "rediss://backend:S7rong-redis-pass@cache.internal:6379/0",
        "s3_bucket": "saas-media-staging-111122223333",
        "ses_sender": "no-reply@yourdomain.com",
        "cognito_user_pool_id": "me-south-1_abc",
        "cognito_client_id": "client",
        "cognito_client_secret": "a-real-client-secret-value",
        "app_secret_key": REAL_SECRET,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def test_real_secrets_are_accepted_in_staging() -> None:
    assert settings().app_env == "staging"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"app_secret_key": "changethis"}, "APP_SECRET_KEY"),
        ({"app_secret_key": "short-but-not-placeholder"}, "APP_SECRET_KEY"),
        ({"cognito_client_secret": "secret"}, "COGNITO_CLIENT_SECRET"),
        ({"database_url": "postgresql://app_user:pw@db:5432/saas"}, "DATABASE_URL"),
        ({"redis_url": "redis://backend:changeme@cache:6379/0"}, "REDIS_URL"),
    ],
)
@pytest.mark.parametrize("env", ["staging", "production"])
def test_placeholders_are_refused_outside_local(override: dict[str, str], named: str, env: str) -> None:
    with pytest.raises(ValidationError, match=named) as raised:
        settings(app_env=env, **override)
    for value in (REAL_SECRET, "S7rong-db-pass", "S7rong-redis-pass", "a-real-client-secret-value"):
        assert value not in str(raised.value)  # the error names the setting, never a value


def test_placeholders_are_only_warned_about_locally(caplog: pytest.LogCaptureFixture) -> None:
    assert settings(app_env="local", app_secret_key="changethis").app_env == "local"
    assert "APP_SECRET_KEY" in caplog.text


def test_issuer_and_jwks_default_to_aws() -> None:
    s = settings()
    assert s.issuer == "https://cognito-idp.me-south-1.amazonaws.com/me-south-1_abc"
    assert s.jwks_url == s.issuer + "/.well-known/jwks.json"
    emulated = settings(
        cognito_issuer="http://127.0.0.1:4566/pool", cognito_jwks_url="http://127.0.0.1:4566/j"
    )
    assert (emulated.issuer, emulated.jwks_url) == ("http://127.0.0.1:4566/pool", "http://127.0.0.1:4566/j")


def test_cors_defaults_to_localhost_subdomains_only_locally() -> None:
    assert settings(app_env="local").cors_regex is not None
    assert settings().cors_regex is None
    assert settings(cors_origin_regex=r"^https://[a-z0-9-]+\.yourdomain\.com$").cors_regex is not None


@pytest.mark.parametrize(
    ("url", "driver", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "asyncpg", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u:p@h/d?sslmode=require", "asyncpg", "postgresql+asyncpg://u:p@h/d?ssl=require"),
        ("postgresql://u:p@h/d?sslmode=require", "psycopg", "postgresql+psycopg://u:p@h/d?sslmode=require"),
    ],
)
def test_driver_urls(url: str, driver: str, expected: str) -> None:
    assert to_driver_url(url, driver) == expected  # type: ignore[arg-type]


def test_driver_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="postgresql"):
        to_driver_url("mysql://u@h/d", "asyncpg")


def test_celery_keeps_everything_under_its_prefix() -> None:
    config = celery_config(settings())
    assert config["broker_transport"] == TRANSPORT
    assert config["broker_transport_options"]["global_keyprefix"] == "celery:"
    assert config["result_backend_transport_options"]["global_keyprefix"] == "celery:"
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]


def test_short_visibility_timeouts_sweep_often() -> None:
    assert redelivery_sweep(3600) == {}
    assert redelivery_sweep(5) == {"unacked_restore_interval": 1, "unacked_restore_throttle": 1}
