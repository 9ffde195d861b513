"""What every section of the rendering shares: the template, the topology, the names and the logical ids.

Logical ids are constants here so that sections refer to each other's resources by name, and the checklist
(harness/deploy/checklist.py) and the tests can name the resources that satisfy an item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.deploy.naming import DeployNames
from harness.deploy.template import Json, Template, get_att, pascal, ref, sub
from harness.errors import DeployError
from harness.topology import Topology

# Template parameters of the app stack (filled by the deployer, never secret).
P_RELEASE_TAG = "ReleaseImageTag"  # image of the one-off tasks (migrations) of this deploy
P_SERVICE_TAG = "ServiceImageTag"  # image the long-running services run
P_WEB_ACL = "WebAclArn"
P_CLOUDFRONT_CERT = "CloudFrontCertificateArn"
P_ALB_PREFIX_LIST = "AlbIngressPrefixListId"
P_REPOSITORY_URI = "ImageRepositoryUri"  # output of the base stack
C_HAS_PREFIX_LIST = "AlbIngressFromPrefixList"

# Logical ids shared between sections.
VPC = "Vpc"
SUBNET_TIERS = ("Public", "App", "Data")
AZ_SUFFIXES = ("A", "B")
SG_ALB, SG_ECS, SG_RDS, SG_REDIS, SG_ENDPOINTS = (
    "AlbSecurityGroup",
    "EcsSecurityGroup",
    "RdsSecurityGroup",
    "RedisSecurityGroup",
    "EndpointSecurityGroup",
)
DATABASE = "Database"
REDIS = "Redis"
MEDIA_BUCKET = "MediaBucket"
CLUSTER = "Cluster"
ALB = "LoadBalancer"
TARGET_GROUP = "BackendTargetGroup"
HTTPS_LISTENER = "HttpsListener"
ALB_CERTIFICATE = "AlbCertificate"
DISTRIBUTION = "Distribution"
USER_POOL = "UserPool"
USER_POOL_CLIENT = "UserPoolClient"
EMAIL_IDENTITY = "EmailIdentity"
CONFIGURATION_SET = "EmailConfigurationSet"
ALARM_TOPIC = "AlarmTopic"
EXECUTION_ROLE = "TaskExecutionRole"
APP_TASK_ROLE = "AppTaskRole"
ONE_OFF_TASK_ROLE = "OneOffTaskRole"


def subnet(tier: str, az: int) -> str:
    return f"{tier}Subnet{AZ_SUFFIXES[az]}"


def subnets(tier: str) -> list[Json]:
    return [ref(subnet(tier, az)) for az in range(len(AZ_SUFFIXES))]


def secret_id(env_key: str) -> str:
    return pascal(env_key.lower(), "secret")


def parameter_id(env_key: str) -> str:
    return pascal(env_key.lower(), "parameter")


def role_password_id(role: str) -> str:
    return pascal("postgres", role, "password")


def redis_password_id(user: str) -> str:
    return pascal("redis", user, "password")


def redis_url_secret_id(user: str) -> str:
    return pascal("redis", user, "url", "secret")


def service_id(name: str) -> str:
    return pascal(name, "service")


def task_definition_id(name: str) -> str:
    return pascal(name, "task", "definition")


def log_group_id(name: str) -> str:
    return pascal(name, "log", "group")


_REFERENCE = re.compile(r"\$\{([a-z0-9_.]+)\}")


def _resolve_password(secret_logical_id: str) -> str:
    # A dynamic reference: CloudFormation reads the generated password when it applies the resource, so the
    # value is in neither the template, the change set nor the stack events.
    return "{{resolve:secretsmanager:${" + secret_logical_id + "}:SecretString:password}}"


@dataclass
class RenderContext:
    topology: Topology
    names: DeployNames
    template: Template
    with_services: bool = True

    def reference(self, key: str) -> tuple[str, dict[str, Json]]:
        """A topology `${key}` as a `Fn::Sub` fragment and the variables it needs."""
        t, names = self.topology, self.names
        db = t.postgres.database
        if key.startswith("postgres.roles.") and key.endswith(".url"):
            role = key.removeprefix("postgres.roles.").removesuffix(".url")
            return (
                f"postgresql://{role}:{_resolve_password(role_password_id(role))}"
                f"@${{{DATABASE}.Endpoint.Address}}:${{{DATABASE}.Endpoint.Port}}/{db}?sslmode=require",
                {},
            )
        if key.startswith("redis.users.") and key.endswith(".url"):
            user = key.removeprefix("redis.users.").removesuffix(".url")
            # rediss: in-transit encryption is on, so the client must speak TLS.
            return (
                f"rediss://{user}:{_resolve_password(redis_password_id(user))}"
                f"@${{{REDIS}.PrimaryEndPoint.Address}}:${{{REDIS}.PrimaryEndPoint.Port}}/0",
                {},
            )
        simple: dict[str, tuple[str, dict[str, Json]]] = {
            "s3.bucket": (f"${{{MEDIA_BUCKET}}}", {}),
            "ses.sender": (t.ses.sender, {}),
            "ses.domain": (t.ses.domain, {}),
            "ses.configuration_set": (f"${{{CONFIGURATION_SET}}}", {}),
            "cognito.user_pool_id": (f"${{{USER_POOL}}}", {}),
            "cognito.client_id": (f"${{{USER_POOL_CLIENT}}}", {}),
            "cognito.client_secret": (f"${{{USER_POOL_CLIENT}.ClientSecret}}", {}),
            "project.region": ("${AWS::Region}", {}),
        }
        if key in simple:
            return simple[key]
        raise DeployError(
            f"{t.source}: the reference ${{{key}}} has no CloudFormation equivalent",
            hint=f"harness/deploy/context.py knows: postgres.roles.*.url, redis.users.*.url, {', '.join(simple)}"
            f" (environment {names.env})",
        )

    def value(self, template_value: str) -> Json:
        """A secret or parameter value of the topology (with `${...}` references) as a CloudFormation value."""
        if not _REFERENCE.search(template_value):
            return template_value
        text = template_value.replace("${", "${!")  # literal text first; references are put back below
        variables: dict[str, Json] = {}
        for key in _REFERENCE.findall(template_value):
            fragment, extra = self.reference(key)
            text = text.replace("${!" + key + "}", fragment)
            variables |= extra
        if not variables and not re.search(r"\$\{(?!!)", text):
            return text.replace("${!", "${")  # every reference was a plain value
        return sub(text, variables or None)

    def repository_image(self, tag_parameter: str) -> Json:
        return sub(f"${{{P_REPOSITORY_URI}}}:${{{tag_parameter}}}")

    def parameter_arn(self, name: str) -> Json:
        return sub(f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{name}")

    def tags(self, component: str) -> list[dict[str, str]]:
        return [
            {"Key": "project", "Value": self.names.project},
            {"Key": "env", "Value": self.names.env},
            {"Key": "component", "Value": component},
        ]

    def att(self, resource: str, attribute: str) -> Json:
        return get_att(resource, attribute)
