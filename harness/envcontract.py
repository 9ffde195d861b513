"""The env contract: the only way the app learns about the stack (same names on AWS, from SM / SSM)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.connections import AwsConnection
from harness.errors import HarnessError
from harness.topology import Topology, resolve_references

# Keys `harness env` always prints (DESIGN.md); the topology's secrets and parameters add to them.
CONTRACT_KEYS = (
    "DATABASE_URL",
    "MIGRATOR_DATABASE_URL",
    "REDIS_URL",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "S3_BUCKET",
    "SES_SENDER",
    "COGNITO_USER_POOL_ID",
    "COGNITO_CLIENT_ID",
    "API_URL",
)


def cognito_urls(aws: AwsConnection, pool_id: str) -> tuple[str, str]:
    """(issuer, JWKS URL), with the JWKS at `<issuer>/.well-known/jwks.json` as on AWS.

    On AWS the issuer is `https://cognito-idp.<region>.amazonaws.com/<pool>`; the emulator writes
    `<endpoint>/<pool>` into its tokens (harness.emulator.fidelity, check `cognito-issuer`) and serves the JWKS
    and openid-configuration under it, so the app verifies local tokens exactly as it verifies AWS's.
    """
    if aws.endpoint_url:
        issuer = f"{aws.endpoint_url.rstrip('/')}/{pool_id}"
    else:
        issuer = f"https://cognito-idp.{aws.region}.amazonaws.com/{pool_id}"
    return issuer, f"{issuer}/.well-known/jwks.json"


def build_env(
    topology: Topology,
    values: Mapping[str, str],
    aws: AwsConnection,
    api_url: str,
    component: str = "backend",
) -> dict[str, str]:
    """The env contract for one component (its own Redis ACL user in REDIS_URL)."""
    if not values:
        raise HarnessError("the stack has not been provisioned yet", hint="run `harness up` (or `nox -s up`)")
    env: dict[str, str] = {}
    for secret in topology.secrets:
        if secret.generate is not None:
            env[secret.env] = values[f"secret.{secret.env}"]
        else:
            env[secret.env] = resolve_references(secret.value or "", values)
    for param in topology.parameters:
        env[param.env] = resolve_references(param.value, values)
    service = topology.services.get(component)
    if service is not None:
        env["REDIS_URL"] = values[f"redis.users.{service.redis_user}.url"]
    elif component not in ("backend", "app"):
        known = ", ".join(topology.services) or "none"
        raise HarnessError(f"no service named {component!r} in the topology (services: {known})")
    env |= aws.as_env()
    pool_id = values.get("cognito.user_pool_id", "")
    issuer, jwks = cognito_urls(aws, pool_id)
    env["COGNITO_ISSUER"] = issuer
    env["COGNITO_JWKS_URL"] = jwks
    # Cognito has no per-group MFA: the app requires TOTP for these groups' roles (empty: none).
    env["COGNITO_MFA_REQUIRED_GROUPS"] = ",".join(topology.cognito.mfa_required_groups)
    env["API_URL"] = api_url
    env["APP_ENV"] = topology.env
    return env
