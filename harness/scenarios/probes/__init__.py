"""Probes: what a scenario can observe besides HTTP responses, each one interface with an implementation per
target (email, object store, database as app_user, Redis keys, worker tasks)."""
