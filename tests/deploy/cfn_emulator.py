"""moto server, plus the CloudFormation behaviour the deploy relies on that moto 5.2 does not model.

Test infrastructure only: `python tests/deploy/cfn_emulator.py --port P` (the deploy code is unchanged and
talks to it like to AWS through `--endpoint-url`). What is added, and why, is listed in docs/deploying.md:

- resource types moto's CloudFormation does not know are accepted as *recorded stubs* (Ref and GetAtt answer
  plausible values) instead of being dropped, so templates that reference them resolve;
- `AWS::SecretsManager::Secret` is a real model backed by moto's Secrets Manager (generated values, dynamic
  `{{resolve:secretsmanager:...}}` references resolved), so the drift check and the no-secret-in-output
  checks see real secrets;
- executing a change set emits per-resource events, and a failing resource marks the stack
  `ROLLBACK_COMPLETE` / `UPDATE_ROLLBACK_COMPLETE` with its reason, keeping the previous template and outputs
  (moto raises the error out of ExecuteChangeSet instead); outputs and parameters are refreshed after an
  execution (moto keeps those of the first template);
- a parameter used inside `Fn::Sub` counts as a reference when diffing (moto only sees `Ref`);
- ECS one-off tasks run to STOPPED with exit code 0 at once, and services report runningCount == desiredCount
  (there are no containers to run).
"""

from __future__ import annotations

import argparse
import contextvars
import copy
import json
import re
import sys
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.moto_api import state_manager
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

_current: contextvars.ContextVar[tuple[Any, str, str] | None] = contextvars.ContextVar(
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
    def create_from_cloudformation_json(  # type: ignore[override]
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
    def update_from_cloudformation_json(  # type: ignore[override]
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
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        return None


class CertificateStub(StubResource):
    """An ACM certificate requested in moto's ACM (the ALB listener checks that its certificate exists)."""

    TYPE = "AWS::CertificateManager::Certificate"
    __module__ = "moto.cloudformation.stubs"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> StubResource:
        from moto.acm.models import acm_backends

        stub = super().create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        props = cloudformation_json.get("Properties", {})
        stub.arn = acm_backends[account_id][region_name].request_certificate(
            props["DomainName"], None, props.get("SubjectAlternativeNames") or [], []
        )
        return stub

    @property
    def physical_resource_id(self) -> str:
        return str(self.arn)


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
    def create_from_cloudformation_json(  # type: ignore[override]
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
    def update_from_cloudformation_json(  # type: ignore[override]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> SecretResource:  # fmt: skip
        props = cloudformation_json.get("Properties", {})
        if "SecretString" in props:
            backend = secretsmanager_backends[account_id][region_name]
            backend.put_secret_value(
                original_resource.name, cls._value(props, account_id, region_name), "", None, ["AWSCURRENT"]
            )  # type: ignore[arg-type]
        return original_resource  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        backend = secretsmanager_backends[account_id][region_name]
        name = cloudformation_json.get("Properties", {}).get("Name", resource_name)
        if name in backend.secrets:
            backend.delete_secret(name, None, True)


def _install_models() -> None:
    for resource_type in STUB_TYPES:
        type(
            resource_type.replace("::", ""),
            (StubResource,),
            {"TYPE": resource_type, "__module__": "moto.cloudformation.stubs"},
        )
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    # get_model_list only sees direct subclasses of CloudFormationModel: add the stubs explicitly.
    original = CloudFormationModel.__subclasses__

    def model_list() -> list[type[CloudFormationModel]]:
        stubs = [c for c in StubResource.__subclasses__()]
        return [*original(), *stubs]  # type: ignore[misc]

    parsing.get_model_list = model_list  # type: ignore[assignment]


def _event(stack: Any, logical_id: str, resource_type: str, status: str, reason: str | None = None) -> None:
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=None,
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def _install_resource_events() -> None:
    create, update = parsing.parse_and_create_resource, parsing.parse_and_update_resource

    def tracked(kind: str, func: Any) -> Any:
        def wrapper(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            current = _current.get()
            stack = current[0] if current else None
            rtype = resource_json.get("Type", "")
            if stack is None:
                return func(logical_id, resource_json, *args, **kwargs)
            # Resources are created lazily (a Ref creates its target first): keep a stack of those in progress.
            _event(stack, logical_id, rtype, f"{kind}_IN_PROGRESS")
            stack._in_progress.append((logical_id, rtype))
            result = func(logical_id, resource_json, *args, **kwargs)
            stack._in_progress.pop()
            _event(stack, logical_id, rtype, f"{kind}_COMPLETE")
            return result

        return wrapper

    parsing.parse_and_create_resource = tracked("CREATE", create)
    parsing.parse_and_update_resource = tracked("UPDATE", update)

    refs = parsing.get_references_from_template

    def references(template: Any) -> list[str]:
        found = refs(template)
        text = json.dumps(template)
        return [*found, *re.findall(r"\$\{([A-Za-z0-9]+)\}", text)]

    parsing.get_references_from_template = references


def change_set_diff(self: Any) -> list[Any]:
    """Like moto's, but a parameter-only change lists the resources that use the parameter as Modify."""
    actions = self.stack.resource_map.build_resource_diff(self.template_dict, self.parameters)
    old = self.stack.resource_map._resource_json_map
    changes = []
    for action, logical_ids in actions.items():
        for logical_id in dict.fromkeys(logical_ids):
            source = old if action == "Remove" else self.template_dict["Resources"]
            changes.append(cfn_models.Change(action, logical_id, source[logical_id]["Type"]))
    return changes


def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = self.change_sets.get(change_set_name) or next(
        (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None
    )
    if change_set is None:
        raise cfn_models.ValidationError(stack_name)
    stack = self.stacks[change_set.stack_id]
    kind = change_set.change_set_type
    resource_map = stack.resource_map
    saved = (
        copy.copy(resource_map._template), dict(resource_map._resource_json_map),
        dict(resource_map.input_parameters), stack.template, dict(stack.parameters),
    )  # fmt: skip
    stack._add_stack_event(f"{kind}_IN_PROGRESS", resource_status_reason="User Initiated")
    stack._in_progress = []
    token = _current.set((stack, kind, change_set_name))
    try:
        change_set.apply()
    except Exception as exc:  # any failure of a resource: report it as CloudFormation does, then roll back
        logical_id, rtype = stack._in_progress[-1] if stack._in_progress else ("(unknown)", "")
        _event(stack, logical_id, rtype, f"{kind}_FAILED", f"{type(exc).__name__}: {exc}")
        change_set.execution_status = "EXECUTE_FAILED"
        if kind == "CREATE":
            stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=f"{logical_id} failed")
            try:
                resource_map.delete()  # CloudFormation deletes what a failed create had made
            except Exception:
                pass
            stack._add_stack_event("ROLLBACK_COMPLETE")
            stack.status = "ROLLBACK_COMPLETE"
        else:
            template, json_map, params, stack_template, stack_params = saved
            resource_map._template, resource_map._resource_json_map = template, json_map
            resource_map.input_parameters = params
            resource_map.load_parameters()
            stack.template, stack.parameters = stack_template, stack_params
            stack._add_stack_event(
                "UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=f"{logical_id} failed"
            )
            stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
        return
    finally:
        _current.reset(token)
    stack.template = change_set.template
    stack.parameters = dict(change_set.parameters)
    stack._parse_template()
    stack.output_map = stack._create_output_map()
    stack._add_stack_event(f"{kind}_COMPLETE")
    stack.status = f"{kind}_COMPLETE"
    change_set.execution_status = "EXECUTE_COMPLETE"


def _install_sub() -> None:
    """`${Resource.Attr.Sub}` in Fn::Sub is GetAtt [Resource, "Attr.Sub"] (moto splits at every dot)."""
    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if not (isinstance(resource_json, dict) and "Fn::Sub" in resource_json):
            return original(resource_json, resources_map)
        template, mappings = resource_json["Fn::Sub"], {}
        if isinstance(template, list):
            template, mappings = template

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in mappings:
                return str(clean_json(mappings[name], resources_map))
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(clean_json({"Fn::GetAtt": [resource, attribute]}, resources_map))
            return str(clean_json({"Ref": name}, resources_map))

        return re.sub(r"\$\{([^}]+)\}", fill, template)

    parsing.clean_json = clean_json


def _install_ssm() -> None:
    from moto.ssm import models as ssm_models

    # AWS::SSM::Parameter's Tags is a map in CloudFormation; moto passes it on as if it were a list.
    for name in ("create_from_cloudformation_json", "update_from_cloudformation_json"):
        original = getattr(ssm_models.Parameter, name).__func__

        def with_list_tags(cls: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            args_list = list(args)
            for i, arg in enumerate(args_list):
                if isinstance(arg, dict) and isinstance(arg.get("Properties", {}).get("Tags"), dict):
                    arg = copy.deepcopy(arg)
                    arg["Properties"]["Tags"] = [
                        {"Key": k, "Value": v} for k, v in arg["Properties"]["Tags"].items()
                    ]
                    args_list[i] = arg
            return _original(cls, *args_list, **kwargs)

        setattr(ssm_models.Parameter, name, classmethod(with_list_tags))


def _install_ec2() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import security_groups as sg_models

    original = sg_models.SecurityGroupIngress.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
    ) -> Any:
        props = cloudformation_json["Properties"]
        if "SourcePrefixListId" not in props:
            return original(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        # moto's CloudFormation ingress asserts a CIDR or a group; its EC2 API does take prefix lists.
        backend = ec2_backends[account_id][region_name]
        group = backend.describe_security_groups(group_ids=[props["GroupId"]])[0]
        backend.authorize_security_group_ingress(
            group_name_or_id=group.id, ip_protocol=props["IpProtocol"], from_port=props["FromPort"],
            to_port=props["ToPort"], ip_ranges=[],
            prefix_list_ids=[{"PrefixListId": props["SourcePrefixListId"], "Description": props.get("Description", "")}],
        )  # fmt: skip
        return cls(group, props)

    sg_models.SecurityGroupIngress.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment]


def _install_rds() -> None:
    from moto.rds import models as rds_models

    # moto's DBParameterGroup has no physical id, so `Ref` hands the object itself to DBInstance.
    rds_models.DBParameterGroup.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]
    # moto's DBInstance ignores ManageMasterUserPassword: answer the secret's ARN as RDS would name it.
    get_att = rds_models.DBInstance.get_cfn_attribute

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == "MasterUserSecret.SecretArn":
            return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:rds!db-{self.db_instance_identifier}"
        return get_att(self, attribute_name)

    rds_models.DBInstance.get_cfn_attribute = get_cfn_attribute  # type: ignore[method-assign]


def _install_ecs() -> None:
    from moto.ecs import models as ecs_models

    state_manager.set_transition(model_name="ecs::task", transition={"progression": "immediate"})
    service_init = ecs_models.Service.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        service_init(self, *args, **kwargs)
        self.running_count, self.pending_count = self.desired_count, 0
        for deployment in self.deployments:
            deployment["runningCount"], deployment["pendingCount"] = self.desired_count, 0
            deployment["rolloutState"] = "COMPLETED"

    ecs_models.Service.__init__ = init  # type: ignore[method-assign]

    # Fargate sizes tasks at task level; moto sums container-level memory, which Fargate does not require.
    requirements = ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements

    def task_requirements(task_definition: Any) -> Any:
        patched = copy.copy(task_definition)
        patched.container_definitions = [
            {"memory": 0, **c}
            if not ({"memory", "Memory", "memoryReservation", "MemoryReservation"} & set(c))
            else c
            for c in task_definition.container_definitions
        ]
        return requirements(patched)

    ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(
        task_requirements
    )  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _install_models()
    _install_resource_events()
    cfn_models.CloudFormationBackend.execute_change_set = execute_change_set  # type: ignore[method-assign]
    cfn_models.ChangeSet.diff = change_set_diff  # type: ignore[method-assign]
    _install_ecs()
    _install_rds()
    _install_sub()
    _install_ssm()
    _install_ec2()
    from moto.server import main as moto_main

    sys.argv = ["moto_server", "-p", str(args.port), "-H", "127.0.0.1"]
    moto_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
