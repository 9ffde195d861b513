"""Reference backend and worker run by the harness: FastAPI + Celery + SQLAlchemy (RLS) + Alembic.

The harness knows this package only through topology.toml's `[services.*]` / `[app]` entries and the
environment contract read by `app.settings.Settings` (see docs/app.md).
"""
