"""The Celery worker: `celery -A app.workers.celery_app worker` (same image as the backend)."""
