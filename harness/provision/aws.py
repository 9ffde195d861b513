"""AWS resources through the AWS APIs (same calls against the emulator, LocalStack or AWS itself).

S3 bucket with every rule of the topology, SES identity + configuration set, Cognito pool/groups/client,
Secrets Manager secrets and SSM parameters. Each resource is read first and written only if it differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from harness.connections import AwsConnection
from harness.errors import ProvisionError
from harness.topology import Topology, resolve_references


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def provision_s3(topology: Topology, aws: AwsConnection) -> list[str]:
    cfg = topology.s3
    s3: Any = aws.client("s3")
    bucket = cfg.bucket
    changes: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if aws.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
        s3.create_bucket(**kwargs)
        changes.append(f"s3: created bucket {bucket}")

    want_versioning = "Enabled" if cfg.versioning else "Suspended"
    have_versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if have_versioning != want_versioning and (cfg.versioning or have_versioning):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": want_versioning})
        changes.append(f"s3: versioning {want_versioning.lower()} on {bucket}")

    block = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
        cfg.block_public_access,
    )
    try:
        have_block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        have_block = {}
    if have_block != block:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
        changes.append(f"s3: public access block {'on' if cfg.block_public_access else 'off'} for {bucket}")

    want_sse = {"SSEAlgorithm": cfg.encryption}
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        have_sse = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    except ClientError as exc:
        if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        have_sse = {}
    if have_sse != want_sse:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": want_sse}]},
        )
        changes.append(f"s3: default encryption {cfg.encryption} on {bucket}")

    want_rules = [
        {
            "ID": rule.id,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Transitions": [{"Days": rule.transition_days, "StorageClass": rule.storage_class}],
        }
        for rule in cfg.lifecycle
    ]
    try:
        have_rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchLifecycleConfiguration":
            raise
        have_rules = []
    if _lifecycle_view(have_rules) != _lifecycle_view(want_rules):
        if want_rules:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": want_rules})
        else:
            s3.delete_bucket_lifecycle(Bucket=bucket)
        changes.append(f"s3: lifecycle rules {[r.id for r in cfg.lifecycle]} on {bucket}")
    return changes


def _lifecycle_view(rules: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r.get("ID"),
            r.get("Status"),
            tuple((t.get("Days"), t.get("StorageClass")) for t in r.get("Transitions", [])),
        )
        for r in rules
    )


def provision_ses(topology: Topology, aws: AwsConnection) -> list[str]:
    cfg = topology.ses
    ses: Any = aws.client("ses")
    changes: list[str] = []
    identities = ses.list_identities(IdentityType="Domain").get("Identities", [])
    if cfg.domain not in identities:
        ses.verify_domain_identity(Domain=cfg.domain)
        changes.append(f"ses: domain identity {cfg.domain}")
    if cfg.dkim:
        attrs = ses.get_identity_dkim_attributes(Identities=[cfg.domain]).get("DkimAttributes", {})
        if not attrs.get(cfg.domain, {}).get("DkimEnabled") or not attrs.get(cfg.domain, {}).get(
            "DkimTokens"
        ):
            ses.verify_domain_dkim(Domain=cfg.domain)
            changes.append(f"ses: DKIM for {cfg.domain}")
    sets = [c["Name"] for c in ses.list_configuration_sets().get("ConfigurationSets", [])]
    if cfg.configuration_set not in sets:
        ses.create_configuration_set(ConfigurationSet={"Name": cfg.configuration_set})
        changes.append(f"ses: configuration set {cfg.configuration_set}")
    return changes


def provision_cognito(topology: Topology, aws: AwsConnection) -> tuple[list[str], dict[str, str]]:
    cfg = topology.cognito
    idp: Any = aws.client("cognito-idp")
    changes: list[str] = []
    policy = {
        "MinimumLength": cfg.password_policy.minimum_length,
        "RequireUppercase": cfg.password_policy.require_uppercase,
        "RequireLowercase": cfg.password_policy.require_lowercase,
        "RequireNumbers": cfg.password_policy.require_numbers,
        "RequireSymbols": cfg.password_policy.require_symbols,
        "TemporaryPasswordValidityDays": 7,
    }
    pool_id = _find_pool(idp, cfg.user_pool_name)
    if pool_id is None:
        pool = idp.create_user_pool(
            PoolName=cfg.user_pool_name,
            Policies={"PasswordPolicy": policy},
            AutoVerifiedAttributes=["email"],
            UsernameAttributes=["email"],
            UsernameConfiguration={"CaseSensitive": False},
            MfaConfiguration="OFF",
            Schema=[{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
        )["UserPool"]
        pool_id = pool["Id"]
        changes.append(f"cognito: user pool {cfg.user_pool_name} ({pool_id})")
    else:
        pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        have = pool.get("Policies", {}).get("PasswordPolicy", {})
        if any(have.get(k) != v for k, v in policy.items()):
            idp.update_user_pool(
                UserPoolId=pool_id, Policies={"PasswordPolicy": policy}, AutoVerifiedAttributes=["email"]
            )
            changes.append(f"cognito: password policy of {cfg.user_pool_name}")
    mfa = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    totp_on = cfg.mfa != "OFF"
    if mfa.get("MfaConfiguration") != cfg.mfa or bool(
        mfa.get("SoftwareTokenMfaConfiguration", {}).get("Enabled")
    ) != (totp_on):
        idp.set_user_pool_mfa_config(
            UserPoolId=pool_id,
            SoftwareTokenMfaConfiguration={"Enabled": totp_on},
            MfaConfiguration=cfg.mfa,
        )
        changes.append(f"cognito: MFA {cfg.mfa} (TOTP) on {cfg.user_pool_name}")
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=pool_id, Limit=60).get("Groups", [])}
    for precedence, group in enumerate(cfg.groups):
        if group not in groups:
            idp.create_group(UserPoolId=pool_id, GroupName=group, Precedence=precedence)
            changes.append(f"cognito: group {group}")
    client_cfg = cfg.app_client
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60).get("UserPoolClients", [])
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == client_cfg.name), None)
    want_client: dict[str, Any] = {
        "ExplicitAuthFlows": list(client_cfg.auth_flows),
        "EnableTokenRevocation": True,
        "PreventUserExistenceErrors": "ENABLED",
        "RefreshTokenRotation": {
            "Feature": "ENABLED" if client_cfg.refresh_token_rotation else "DISABLED",
            "RetryGracePeriodSeconds": client_cfg.refresh_token_grace_seconds,
        },
    }
    if client_id is None:
        created = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=client_cfg.name,
            GenerateSecret=client_cfg.generate_secret,
            **want_client,
        )["UserPoolClient"]
        client_id = created["ClientId"]
        client = created
        changes.append(f"cognito: app client {client_cfg.name}")
    else:
        client = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
        if (
            sorted(client.get("ExplicitAuthFlows", [])) != sorted(client_cfg.auth_flows)
            or client.get("RefreshTokenRotation") != want_client["RefreshTokenRotation"]
        ):
            client = idp.update_user_pool_client(
                UserPoolId=pool_id, ClientId=client_id, ClientName=client_cfg.name, **want_client
            )["UserPoolClient"]
            changes.append(f"cognito: auth flows / refresh-token rotation of app client {client_cfg.name}")
    outputs = {
        "cognito.user_pool_id": pool_id,
        "cognito.client_id": client_id,
        "cognito.client_secret": str(client.get("ClientSecret", "")),
    }
    return changes, outputs


def _find_pool(idp: Any, name: str) -> str | None:
    paginator = idp.get_paginator("list_user_pools")
    for page in paginator.paginate(PaginationConfig={"PageSize": 60}):
        for pool in page.get("UserPools", []):
            if pool["Name"] == name:
                return str(pool["Id"])
    return None


def provision_secrets_and_parameters(
    topology: Topology,
    aws: AwsConnection,
    values: Mapping[str, str],
    generated: Callable[[str, int], str],
) -> list[str]:
    sm: Any = aws.client("secretsmanager")
    ssm: Any = aws.client("ssm")
    changes: list[str] = []
    for secret in topology.secrets:
        if secret.generate is not None:
            value = generated(secret.name, secret.generate)
        else:
            value = resolve_references(secret.value or "", values)
        try:
            current = sm.get_secret_value(SecretId=secret.name)["SecretString"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            sm.create_secret(Name=secret.name, Description=secret.description, SecretString=value)
            changes.append(f"secretsmanager: created {secret.name}")
            continue
        if current != value:
            sm.put_secret_value(SecretId=secret.name, SecretString=value)
            changes.append(f"secretsmanager: new value for {secret.name}")  # the value itself is never shown
    for param in topology.parameters:
        value = resolve_references(param.value, values)
        try:
            current = ssm.get_parameter(Name=param.name)["Parameter"]["Value"]
        except ClientError as exc:
            if _code(exc) != "ParameterNotFound":
                raise
            current = None
        if current != value:
            ssm.put_parameter(
                Name=param.name, Value=value, Type="String", Overwrite=True, Description=param.description
            )
            changes.append(f"ssm: {'set' if current is None else 'updated'} {param.name}")
    return changes


def wrap_client_errors(component: str, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except ClientError as exc:
        op = exc.operation_name
        raise ProvisionError(
            f"{component}: {op} failed: {_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}",
            hint="`harness logs aws` shows the emulator's side",
        ) from exc
