"""Alembic environment: always connects as the migrator (MIGRATOR_DATABASE_URL), synchronously via psycopg."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from app.models import Base
from app.settings import MigrationSettings, to_driver_url

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

settings = MigrationSettings()  # read from the environment
# Migrations read the runtime role from here (see versions/*: GRANTs and default privileges).
config.attributes.setdefault("runtime_role", settings.runtime_role)
url = to_driver_url(settings.migrator_database_url, "psycopg")


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
