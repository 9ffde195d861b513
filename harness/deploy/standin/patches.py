"""The CloudFormation behaviour the deploy relies on that moto 5.2 lacks, patched into moto inside the stand-in's
process: per-resource events and rollback on execution, refreshed outputs, `${Param}` references in diffs,
`Fn::Sub` attribute paths, and the few EC2/RDS/SSM/ECS fixes listed in docs/deploying.md.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.moto_api import state_manager

from harness.deploy.standin.models import STUB_TYPES, StubResource, current_change_set


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
        return [*original(), *stubs]

    parsing.get_model_list = model_list  # type: ignore[assignment]


def _event(stack: Any, logical_id: str, resource_type: str, status: str, reason: str | None = None) -> None:
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=None,  # type: ignore[arg-type]
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
            current = current_change_set.get()
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
        raise cfn_models.ValidationError(stack_name)  # type: ignore[attr-defined]
    stack = self.stacks[change_set.stack_id]
    kind = change_set.change_set_type
    resource_map = stack.resource_map
    saved = (
        copy.copy(resource_map._template), dict(resource_map._resource_json_map),
        dict(resource_map.input_parameters), stack.template, dict(stack.parameters),
    )  # fmt: skip
    stack._add_stack_event(f"{kind}_IN_PROGRESS", resource_status_reason="User Initiated")
    stack._in_progress = []
    token = current_change_set.set((stack, kind, change_set_name))
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
        current_change_set.reset(token)
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

        setattr(ssm_models.Parameter, name, classmethod(with_list_tags))  # type: ignore[arg-type]


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

    _replace(sg_models.SecurityGroupIngress, "create_from_cloudformation_json", classmethod(create))  # type: ignore[arg-type]


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

    _replace(
        ecs_models.EC2ContainerServiceBackend,
        "_calculate_task_resource_requirements",
        staticmethod(task_requirements),
    )


def _replace(owner: Any, name: str, value: Any) -> None:
    """Patch one attribute of a moto class (moto's own types do not expect it)."""
    setattr(owner, name, value)


def install() -> None:
    """Every model and patch, once, before moto's server starts."""
    _install_models()
    _install_resource_events()
    _replace(cfn_models.CloudFormationBackend, "execute_change_set", execute_change_set)
    _replace(cfn_models.ChangeSet, "diff", change_set_diff)
    _install_ecs()
    _install_rds()
    _install_sub()
    _install_ssm()
    _install_ec2()
