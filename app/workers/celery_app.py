"""The Celery app: `celery -A app.workers.celery_app worker` (finds `app` below)."""

from __future__ import annotations

from celery import Celery

from app.workers.config import LazyCeleryConfig

celery_app = Celery("saas", include=["app.workers.tasks"])
celery_app.config_from_object(LazyCeleryConfig())
app = celery_app  # the name `celery -A app.workers.celery_app` looks for
