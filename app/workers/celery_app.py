"""The Celery app: `celery -A app.workers.celery_app worker` (finds `app` below)."""

from __future__ import annotations

from celery import Celery

from app.workers.config import LazyCeleryConfig
from app.workers.lifecycle import Heartbeat, OutboxRelay

celery_app = Celery("saas", include=["app.workers.tasks"])
celery_app.config_from_object(LazyCeleryConfig())
celery_app.steps["consumer"].add(Heartbeat)  # WORKER_HEARTBEAT_FILE + lease renewal
celery_app.steps["worker"].add(OutboxRelay)  # queues again what the outbox says is not done
app = celery_app  # the name `celery -A app.workers.celery_app` looks for
