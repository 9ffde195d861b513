"""Apply the topology to whatever backend answers (embedded or Docker): same code, idempotent.

`provision()` returns the list of changes it made (empty on a second run) and the values the env contract
is built from (`Outputs`), which are kept in the state dir (mode 0600) for `harness env`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness.connections import Infrastructure
from harness.provision.aws import (
    provision_cognito,
    provision_s3,
    provision_secrets_and_parameters,
    provision_ses,
    wrap_client_errors,
)
from harness.provision.outputs import OUTPUTS_FILE, fingerprint
from harness.provision.postgres import provision_postgres
from harness.provision.redis import provision_redis
from harness.state import StateDir
from harness.topology import Topology


@dataclass(frozen=True)
class ProvisionResult:
    changes: list[str]
    values: dict[str, str] = field(repr=False)  # holds passwords: never printed


def role_password(state: StateDir, role: str) -> str:
    return state.secret(f"postgres-role-{role}")


def redis_user_password(state: StateDir, user: str) -> str:
    return state.secret(f"redis-user-{user}")


def reference_values(topology: Topology, infra: Infrastructure, state: StateDir) -> dict[str, str]:
    """The `${...}` values that do not need the AWS side (URLs of roles and ACL users, names)."""
    pg, rd = infra.postgres, infra.redis
    values = {
        f"postgres.roles.{role}.url": pg.url_for(role, role_password(state, role), topology.postgres.database)
        for role in topology.postgres.roles
    }
    values |= {
        f"redis.users.{user}.url": rd.url_for(user, redis_user_password(state, user))
        for user in topology.redis.users
    }
    values |= {
        "s3.bucket": topology.s3.bucket,
        "ses.sender": topology.ses.sender,
        "ses.domain": topology.ses.domain,
        "ses.configuration_set": topology.ses.configuration_set,
        "project.region": topology.region,
    }
    return values


def provision(topology: Topology, infra: Infrastructure, state: StateDir) -> ProvisionResult:
    """Apply the whole topology. Independent parts run in parallel (Postgres, Redis, S3, SES, Cognito);
    secrets and parameters follow Cognito, whose ids they contain."""
    # Generate every secret first, serially: the state dir's secrets file is not written concurrently.
    passwords = {role: role_password(state, role) for role in topology.postgres.roles}
    redis_passwords = {user: redis_user_password(state, user) for user in topology.redis.users}
    generated = {
        s.name: state.secret(f"generated:{s.name}", s.generate) for s in topology.secrets if s.generate
    }
    aws = infra.aws

    def cognito_then_secrets() -> tuple[list[str], dict[str, str]]:
        changes, cognito_values = wrap_client_errors("cognito", lambda: provision_cognito(topology, aws))
        values = reference_values(topology, infra, state) | cognito_values
        changes += wrap_client_errors(
            "secrets",
            lambda: provision_secrets_and_parameters(topology, aws, values, lambda name, _: generated[name]),
        )
        return changes, values

    with ThreadPoolExecutor(max_workers=5) as pool:
        parts = [
            pool.submit(provision_postgres, topology, infra.postgres, passwords.__getitem__),
            pool.submit(provision_redis, topology, infra.redis, redis_passwords.__getitem__),
            pool.submit(wrap_client_errors, "s3", lambda: provision_s3(topology, aws)),
            pool.submit(wrap_client_errors, "ses", lambda: provision_ses(topology, aws)),
        ]
        cognito = pool.submit(cognito_then_secrets)
        changes = [change for part in parts for change in part.result()]
        cognito_changes, values = cognito.result()
    changes += cognito_changes
    for secret in topology.secrets:
        if secret.generate is not None:
            values[f"secret.{secret.env}"] = generated[secret.name]
    state.write_json(
        OUTPUTS_FILE, {"values": values, "fingerprint": fingerprint(topology, infra)}, private=True
    )
    return ProvisionResult(changes, values)
