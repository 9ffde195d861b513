"""The CloudFormation resource models the stand-in adds to moto: recorded stubs for the types moto drops,
an ACM-backed certificate, and `AWS::SecretsManager::Secret` on moto's Secrets Manager (docs/deploying.md,
"The AWS stand-in", lists each one and what checks it instead).

Imported only inside the stand-in's own process (`python -m harness.deploy.standin`): moto's model registry
is global, and these classes register themselves in it by subclassing `CloudFormationModel`.
"""

from __future__ import annotations

import contextvars
import json
import re
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.models import secretsmanager_backends

STUB_TYPES = (
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudWatch::Alarm",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::ElastiCache::User",
    "AWS::ElastiCache::UserGroup",
    "AWS::S3::BucketPolicy",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SES::EmailIdentity",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::WAFv2::WebACL",
)
# Properties that name a resource (its Ref) when the template sets them.
NAME_PROPERTIES = ("Name", "UserPoolName", "ClientName", "GroupName", "EmailIdentity", "UserId", "UserGroupId",
                   "ReplicationGroupId", "CacheSubnetGroupName", "AlarmName", "DomainName")  # fmt: skip
_DYNAMIC = re.compile(
    r"\{\{resolve:secretsmanager:([^:}]+(?::[^:}]+){6})(?::SecretString)?(?::([^:}]*))?\}\}"
)
_DYNAMIC_SIMPLE = re.compile(r"\{\{resolve:secretsmanager:(.+?):SecretString:([^:}]+)(?:::)?\}\}")

current_change_set: contextvars.ContextVar[tuple[Any, str, str] | None] = contextvars.ContextVar(
    "current", default=None
)


def _short_id(seed: str) -> str:
    import hashlib

    return hashlib.sha1(seed.encode()).hexdigest()[:12]


class StubResource(CloudFormationModel):
    """A resource moto does not model: its properties are recorded, Ref/GetAtt answer plausible values."""

    TYPE = "AWS::Stub::Stub"
    __module__ = "moto.cloudformation.stubs"  # moto's model registry keys instances by this module path

    def __init__(self, name: str, properties: dict[str, Any], account_id: str, region: str, logical_id: str):
        self.name = name
        self.properties = properties
        self.account_id = account_id
        self.region = region
        self.logical_id = logical_id

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    @property
    def physical_resource_id(self) -> str:
        kind = self.TYPE
        if kind == "AWS::Cognito::UserPool":
            return f"{self.region}_{_short_id(self.name)[:9]}"
        if kind == "AWS::Cognito::UserPoolClient":
            return _short_id(self.name + "client") + "abcdefghijklmn"
        if kind in ("AWS::CertificateManager::Certificate", "AWS::SNS::Subscription"):
            return self._arn()
        return self.name

    def _arn(self) -> str:
        service = self.TYPE.split("::")[1].lower()
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{self.logical_id.lower()}/{_short_id(self.name)}"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self._arn()
        if attribute_name == "DomainName":
            return f"d{_short_id(self.name)}.cloudfront.net"
        if attribute_name == "PrimaryEndPoint.Address":
            return f"master.{self.name}.cache.amazonaws.com"
        if attribute_name == "PrimaryEndPoint.Port":
            return "6379"
        if attribute_name == "ClientSecret":
            return "cs" + _short_id(self.name + "secret") * 4
        if attribute_name == "Name":
            return self.name
        return f"{self.logical_id}.{attribute_name}"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> StubResource:
        props = cloudformation_json.get("Properties", {})
        name = next((props[p] for p in NAME_PROPERTIES if isinstance(props.get(p), str)), resource_name)
        return cls(name, props, account_id, region_name, kwargs.get("LogicalId", resource_name))

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> StubResource:  # fmt: skip
        return cls.create_from_cloudformation_json(
            new_resource_name,
            cloudformation_json,
            account_id,
            region_name,
            LogicalId=original_resource.logical_id,
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        return None


class CertificateStub(StubResource):
    """An ACM certificate requested in moto's ACM (the ALB listener checks that its certificate exists)."""

    TYPE = "AWS::CertificateManager::Certificate"
    __module__ = "moto.cloudformation.stubs"
    certificate_arn = ""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> StubResource:
        from moto.acm.models import acm_backends

        stub: Any = super().create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        props = cloudformation_json.get("Properties", {})
        acm: Any = acm_backends[account_id][region_name]
        stub.certificate_arn = acm.request_certificate(
            props["DomainName"], None, props.get("SubjectAlternativeNames") or [], []
        )
        return stub  # type: ignore[no-any-return]

    @property
    def physical_resource_id(self) -> str:
        return self.certificate_arn


def _resolve_dynamic(text: str, account_id: str, region: str) -> str:
    backend = secretsmanager_backends[account_id][region]

    def fill(match: re.Match[str]) -> str:
        secret_id, key = match.group(1), match.group(2)
        value = backend.get_secret_value(secret_id, "", "")["SecretString"]
        return str(json.loads(value)[key]) if key else value

    return _DYNAMIC_SIMPLE.sub(fill, text)


class SecretResource(CloudFormationModel):
    """AWS::SecretsManager::Secret on moto's Secrets Manager backend."""

    __module__ = "moto.secretsmanager.cfn"

    def __init__(self, arn: str, name: str, account_id: str, region: str):
        self.arn, self.name, self.account_id, self.region = arn, name, account_id, region

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Id",)

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def _value(props: dict[str, Any], account_id: str, region: str) -> str:
        if "SecretString" in props:
            return _resolve_dynamic(str(props["SecretString"]), account_id, region)
        spec = props.get("GenerateSecretString", {})
        backend = secretsmanager_backends[account_id][region]
        password = backend.get_random_password(
            password_length=int(spec.get("PasswordLength", 32)),
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=False,
            exclude_punctuation=bool(spec.get("ExcludePunctuation", False)),
            exclude_uppercase=False,
            exclude_lowercase=False,
            include_space=False,
            require_each_included_type=True,
        )
        password = json.loads(password)["RandomPassword"] if password.startswith("{") else password
        if "SecretStringTemplate" in spec:
            body = json.loads(spec["SecretStringTemplate"])
            body[spec["GenerateStringKey"]] = password
            return json.dumps(body)
        return str(password)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SecretResource:
        props = cloudformation_json.get("Properties", {})
        backend = secretsmanager_backends[account_id][region_name]
        name = props.get("Name", resource_name)
        if name in backend.secrets:
            raise ValueError(
                f"{name} already exists in stack-external Secrets Manager"
            )  # AWS: "already exists"
        backend.create_secret(
            name=name, secret_string=cls._value(props, account_id, region_name), secret_binary=None,
            description=props.get("Description"), tags=props.get("Tags"), kms_key_id=None,
            client_request_token=None, replica_regions=[], force_overwrite=False,
        )  # fmt: skip
        return cls(backend.secrets[name].arn, name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> SecretResource:  # fmt: skip
        props = cloudformation_json.get("Properties", {})
        if "SecretString" in props:
            backend: Any = secretsmanager_backends[account_id][region_name]
            backend.put_secret_value(
                original_resource.name, cls._value(props, account_id, region_name), "", None, ["AWSCURRENT"]
            )
        return original_resource  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        backend = secretsmanager_backends[account_id][region_name]
        name = cloudformation_json.get("Properties", {}).get("Name", resource_name)
        if name in backend.secrets:
            backend.delete_secret(name, None, True)
