"""Celery configuration, computed from the settings when Celery first reads it (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from app.keys import CELERY
from app.settings import Settings, get_settings

TRANSPORT = "app.workers.redis_transport:Transport"
AI_ROLLUP_INTERVAL_SECONDS = 300.0
SHORT_VISIBILITY_TIMEOUT = 600


def celery_config(settings: Settings) -> dict[str, Any]:
    """Every broker key, result key and pub/sub channel lives under `celery:` (the ACL namespace)."""
    return {
        "broker_url": settings.redis_url,
        "broker_transport": TRANSPORT,
        "broker_transport_options": {
            "global_keyprefix": CELERY,
            # A task unacknowledged this long (its worker died) is delivered again.
            "visibility_timeout": settings.celery_visibility_timeout,
            **redelivery_sweep(settings.celery_visibility_timeout),
        },
        "broker_connection_retry_on_startup": True,
        # Reconnect for as long as the broker is away (Celery's default gives up after 100 attempts).
        "broker_connection_max_retries": None,
        "worker_consumer": "app.workers.lifecycle:Consumer",  # reconnects every second (lifecycle.py)
        "result_backend": settings.redis_url,
        "result_backend_transport_options": {"global_keyprefix": CELERY},
        "result_expires": 3600,
        "result_extended": True,  # name, args and kwargs in the result (the console shows the tenant id)
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        # Run by `celery -A app.workers.celery_app beat` where deployed; locally the backend queues a
        # rollup per tenant after AI calls (see app/api/ai.py).
        "beat_schedule": {
            "ai-usage-rollup": {"task": "ai.aggregate_usage", "schedule": AI_ROLLUP_INTERVAL_SECONDS},
        },
    }


def redelivery_sweep(visibility_timeout: int) -> dict[str, int]:
    """kombu looks for expired unacknowledged messages every interval x throttle seconds (100 s by
    default); a short visibility timeout (tests, local) needs a sweep to match, or redelivery lags."""
    if visibility_timeout >= SHORT_VISIBILITY_TIMEOUT:
        return {}
    return {"unacked_restore_interval": max(1, visibility_timeout // 5), "unacked_restore_throttle": 1}


class LazyCeleryConfig(Mapping[str, Any]):
    """A mapping Celery reads on first use of `app.conf`; the environment is read only then."""

    @cached_property
    def _values(self) -> dict[str, Any]:
        return celery_config(get_settings())

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
