"""Apply the topology to whatever backend answers (embedded or Docker): same code, idempotent.

`provision()` returns the list of changes it made (empty on a second run) and the values the env contract
is built from (`Outputs`), which are kept in the state dir (mode 0600) for `harness env`.
"""

from __future__ import annotations

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
    changes = provision_postgres(topology, infra.postgres, lambda role: role_password(state, role))
    changes += provision_redis(topology, infra.redis, lambda user: redis_user_password(state, user))
    aws = infra.aws
    changes += wrap_client_errors("s3", lambda: provision_s3(topology, aws))
    changes += wrap_client_errors("ses", lambda: provision_ses(topology, aws))
    cognito_changes, cognito_values = wrap_client_errors("cognito", lambda: provision_cognito(topology, aws))
    changes += cognito_changes
    values = reference_values(topology, infra, state) | cognito_values
    changes += wrap_client_errors(
        "secrets",
        lambda: provision_secrets_and_parameters(
            topology, aws, values, lambda name, length: state.secret(f"generated:{name}", length)
        ),
    )
    for secret in topology.secrets:
        if secret.generate is not None:
            values[f"secret.{secret.env}"] = state.secret(f"generated:{secret.name}", secret.generate)
    state.write_json(
        OUTPUTS_FILE, {"values": values, "fingerprint": fingerprint(topology, infra)}, private=True
    )
    return ProvisionResult(changes, values)
