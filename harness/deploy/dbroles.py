"""`python -m harness.deploy.dbroles`: the `dbroles` one-off task of a rollout, inside the app image.

Connects to RDS with the master credentials RDS keeps in Secrets Manager and applies the topology's roles and
grants with the same code as the local stack (harness/provision/postgres.py), idempotently: app_migrator owns
the schema, app_user owns nothing and cannot bypass RLS. Passwords come from the environment (ECS injects them
from Secrets Manager) and are never printed.
"""

from __future__ import annotations

import os
import sys

from harness.connections import PostgresConnection
from harness.errors import HarnessError
from harness.topology import load_topology


def main() -> int:
    try:
        topology = load_topology(env=os.environ["HARNESS_ENV"])
        conn = PostgresConnection(
            host=os.environ["DB_HOST"],
            port=int(os.environ["DB_PORT"]),
            superuser=os.environ["DB_MASTER_USER"],
            password=os.environ["DB_MASTER_PASSWORD"],
        )

        def role_password(role: str) -> str:
            return os.environ[f"ROLE_PASSWORD_{role.upper()}"]

        from harness.provision.postgres import provision_postgres

        changes = provision_postgres(topology, conn, role_password)
    except KeyError as exc:
        print(
            f"dbroles: missing environment variable {exc.args[0]} (set by the task definition)",
            file=sys.stderr,
        )
        return 2
    except HarnessError as exc:
        print(f"dbroles: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(f"dbroles: {change}")
    print(f"dbroles: {len(changes)} change(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
