"""Cognito (pool, groups, confidential client), SES (domain identity with DKIM, configuration set with event
destinations) and the env contract's Secrets Manager secrets and SSM parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.deploy.context import (
    CONFIGURATION_SET,
    EMAIL_IDENTITY,
    USER_POOL,
    USER_POOL_CLIENT,
    RenderContext,
    parameter_id,
    redis_url_secret_id,
    secret_id,
)
from harness.deploy.template import NO_VALUE, Json, get_att, pascal, ref, sub

SES_EVENT_TYPES = ("send", "reject", "bounce", "complaint", "delivery")
SES_EVENTS_TOPIC = "SesEventsTopic"
SES_EVENTS_QUEUE = "SesEventsQueue"
_REDIS_REF = re.compile(r"^\$\{redis\.users\.([a-z0-9_-]+)\.url\}$")


def add_cognito(ctx: RenderContext) -> None:
    t, cfg = ctx.template, ctx.topology.cognito
    policy = cfg.password_policy
    t.add(
        USER_POOL,
        "AWS::Cognito::UserPool",
        {
            "UserPoolName": cfg.user_pool_name,
            "UsernameAttributes": ["email"],
            "AutoVerifiedAttributes": ["email"],
            "UsernameConfiguration": {"CaseSensitive": False},
            "Schema": [{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
            "Policies": {
                "PasswordPolicy": {
                    "MinimumLength": policy.minimum_length,
                    "RequireUppercase": policy.require_uppercase,
                    "RequireLowercase": policy.require_lowercase,
                    "RequireNumbers": policy.require_numbers,
                    "RequireSymbols": policy.require_symbols,
                    "TemporaryPasswordValidityDays": 7,
                }
            },
            "MfaConfiguration": cfg.mfa,
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"] if cfg.mfa != "OFF" else NO_VALUE,
            "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
            # Cognito's own verification and reset mails go out through the SES identity below.
            "EmailConfiguration": {
                "EmailSendingAccount": "DEVELOPER",
                "From": ctx.topology.ses.sender,
                "SourceArn": sub(
                    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
                    f"${{{EMAIL_IDENTITY}}}"
                ),
                "ConfigurationSet": ref(CONFIGURATION_SET),
            },
            "DeletionProtection": "ACTIVE",
            "UserPoolTags": {"project": ctx.names.project, "env": ctx.names.env, "component": "auth"},
        },
        deletion_policy="Retain",
    )
    for precedence, group in enumerate(cfg.groups):
        t.add(
            pascal(group, "group"),
            "AWS::Cognito::UserPoolGroup",
            {"UserPoolId": ref(USER_POOL), "GroupName": group, "Precedence": precedence},
        )
    client = cfg.app_client
    client_props: dict[str, Json] = {
        "UserPoolId": ref(USER_POOL),
        "ClientName": client.name,
        "GenerateSecret": client.generate_secret,
        "ExplicitAuthFlows": list(client.auth_flows),
        "EnableTokenRevocation": True,
        "PreventUserExistenceErrors": "ENABLED",
    }
    if client.refresh_token_rotation:
        client_props["RefreshTokenRotation"] = {
            "Feature": "ENABLED",
            "RetryGracePeriodSeconds": client.refresh_token_grace_seconds,
        }
    t.add(USER_POOL_CLIENT, "AWS::Cognito::UserPoolClient", client_props)


def add_email(ctx: RenderContext) -> None:
    t, ses = ctx.template, ctx.topology.ses
    t.add(
        CONFIGURATION_SET,
        "AWS::SES::ConfigurationSet",
        {
            "Name": ses.configuration_set,
            "DeliveryOptions": {"TlsPolicy": "REQUIRE"},
            "ReputationOptions": {"ReputationMetricsEnabled": True},
            "SendingOptions": {"SendingEnabled": True},
        },
    )
    # Bounces, complaints and deliveries (and sends/rejects) counted in CloudWatch.
    t.add(
        "EmailEventsToCloudWatch",
        "AWS::SES::ConfigurationSetEventDestination",
        {
            "ConfigurationSetName": ref(CONFIGURATION_SET),
            "EventDestination": {
                "Name": "cloudwatch",
                "Enabled": True,
                "MatchingEventTypes": list(SES_EVENT_TYPES),
                "CloudWatchDestination": {
                    "DimensionConfigurations": [
                        {
                            "DimensionName": "ses:configuration-set",
                            "DimensionValueSource": "messageTag",
                            "DefaultDimensionValue": ses.configuration_set,
                        }
                    ]
                },
            },
        },
    )
    _add_email_events_queue(ctx)
    t.add(
        EMAIL_IDENTITY,
        "AWS::SES::EmailIdentity",
        {
            "EmailIdentity": ses.domain,
            "DkimAttributes": {"SigningEnabled": ses.dkim},
            "DkimSigningAttributes": {"NextSigningKeyLength": "RSA_2048_BIT"} if ses.dkim else NO_VALUE,
            "ConfigurationSetAttributes": {"ConfigurationSetName": ref(CONFIGURATION_SET)},
            "FeedbackAttributes": {"EmailForwardingEnabled": False},
        },
    )
    zone = ctx.topology.deploy.edge.hosted_zone_id
    if ses.dkim and zone:
        # Easy DKIM: the three CNAMEs SES hands out; SES verifies the domain once they resolve.
        for n in (1, 2, 3):
            t.add(
                f"DkimRecord{n}",
                "AWS::Route53::RecordSet",
                {
                    "HostedZoneId": zone,
                    "Name": get_att(EMAIL_IDENTITY, f"DkimDNSTokenName{n}"),
                    "Type": "CNAME",
                    "TTL": "1800",
                    "ResourceRecords": [get_att(EMAIL_IDENTITY, f"DkimDNSTokenValue{n}")],
                },
            )


def _add_email_events_queue(ctx: RenderContext) -> None:
    """SES events -> SNS -> an SQS queue the deployed scenarios read (the `deployed` target's inbox probe)."""
    t, names = ctx.template, ctx.names
    t.add(
        SES_EVENTS_TOPIC,
        "AWS::SNS::Topic",
        {"TopicName": f"{names.app_stack}-ses-events", "Tags": ctx.tags("email")},
    )
    t.add(
        SES_EVENTS_QUEUE,
        "AWS::SQS::Queue",
        {
            "QueueName": f"{names.app_stack}-ses-events",
            "MessageRetentionPeriod": 86400,
            "SqsManagedSseEnabled": True,
            "Tags": ctx.tags("email"),
        },
    )
    t.add(
        "SesEventsTopicPolicy",
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [ref(SES_EVENTS_TOPIC)],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ses.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": ref(SES_EVENTS_TOPIC),
                        "Condition": {"StringEquals": {"AWS:SourceAccount": ref("AWS::AccountId")}},
                    }
                ],
            },
        },
    )
    t.add(
        "SesEventsQueuePolicy",
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(SES_EVENTS_QUEUE)],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": get_att(SES_EVENTS_QUEUE, "Arn"),
                        "Condition": {"ArnEquals": {"aws:SourceArn": ref(SES_EVENTS_TOPIC)}},
                    }
                ],
            },
        },
    )
    t.add(
        "SesEventsSubscription",
        "AWS::SNS::Subscription",
        {
            "TopicArn": ref(SES_EVENTS_TOPIC),
            "Protocol": "sqs",
            "Endpoint": get_att(SES_EVENTS_QUEUE, "Arn"),
            "RawMessageDelivery": True,
        },
    )
    t.add(
        "EmailEventsToQueue",
        "AWS::SES::ConfigurationSetEventDestination",
        {
            "ConfigurationSetName": ref(CONFIGURATION_SET),
            "EventDestination": {
                "Name": "sns-queue",
                "Enabled": True,
                "MatchingEventTypes": list(SES_EVENT_TYPES),
                "SnsDestination": {"TopicARN": ref(SES_EVENTS_TOPIC)},
            },
        },
        depends_on=["SesEventsTopicPolicy"],
    )


@dataclass(frozen=True)
class EnvSource:
    """Where a task gets one env-contract key from: a secret or a parameter of this stack."""

    env: str
    logical_id: str
    is_secret: bool


def redis_user_of_secret(value: str | None) -> str | None:
    match = _REDIS_REF.match(value or "")
    return match.group(1) if match else None


def add_env_contract(ctx: RenderContext) -> None:
    """A secret per topology secret, a parameter per topology parameter, and a REDIS_URL per Redis user."""
    t = ctx.template
    for secret in ctx.topology.secrets:
        props: dict[str, Json] = {"Name": secret.name, "Description": secret.description or secret.env}
        if secret.generate is not None:
            props["GenerateSecretString"] = {"PasswordLength": secret.generate, "ExcludePunctuation": True}
        else:
            props["SecretString"] = ctx.value(secret.value or "")
        props["Tags"] = [*ctx.tags("config"), {"Key": "env-key", "Value": secret.env}]
        t.add(secret_id(secret.env), "AWS::SecretsManager::Secret", props)
    for user, name in extra_redis_url_secrets(ctx).items():
        t.add(
            redis_url_secret_id(user),
            "AWS::SecretsManager::Secret",
            {
                "Name": name,
                "Description": f"REDIS_URL of the Redis user {user}",
                "SecretString": ctx.value(f"${{redis.users.{user}.url}}"),
                "Tags": [*ctx.tags("config"), {"Key": "env-key", "Value": "REDIS_URL"}],
            },
        )
    for param in ctx.topology.parameters:
        t.add(
            parameter_id(param.env),
            "AWS::SSM::Parameter",
            {
                "Name": param.name,
                "Type": "String",
                "Value": ctx.value(param.value),
                "Description": param.description or param.env,
                "Tags": {"project": ctx.names.project, "env": ctx.names.env, "env-key": param.env},
            },
        )


def extra_redis_url_secrets(ctx: RenderContext) -> dict[str, str]:
    """Redis users of services whose REDIS_URL is not the topology's REDIS_URL secret -> the secret's name."""
    shared = next((s for s in ctx.topology.secrets if s.env == "REDIS_URL"), None)
    shared_user = redis_user_of_secret(shared.value if shared else None)
    base = shared.name if shared else f"{ctx.names.project}/{ctx.names.env}/redis-url"
    extra: dict[str, str] = {}
    for service in ctx.topology.services.values():
        if service.redis_user != shared_user:
            extra[service.redis_user] = f"{base}-{service.redis_user}"
    return dict(sorted(extra.items()))


def env_sources(ctx: RenderContext, service_name: str | None) -> list[EnvSource]:
    """The env contract of one service (its own REDIS_URL), or of a one-off task when `service_name` is None."""
    sources: list[EnvSource] = []
    extra = extra_redis_url_secrets(ctx)
    service = ctx.topology.services.get(service_name or "")
    for secret in ctx.topology.secrets:
        logical_id = secret_id(secret.env)
        if secret.env == "REDIS_URL" and service is not None and service.redis_user in extra:
            logical_id = redis_url_secret_id(service.redis_user)
        sources.append(EnvSource(secret.env, logical_id, True))
    for param in ctx.topology.parameters:
        sources.append(EnvSource(param.env, parameter_id(param.env), False))
    return sources
