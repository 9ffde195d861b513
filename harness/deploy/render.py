"""The topology rendered as CloudFormation: the app stack (in the topology's region) and the edge stack
(us-east-1). Same topology in, byte-identical JSON out."""

from __future__ import annotations

from harness.deploy.alarms import add_alarms
from harness.deploy.base import render_base
from harness.deploy.compute import add_compute
from harness.deploy.context import (
    ALB,
    CLUSTER,
    DATABASE,
    DISTRIBUTION,
    MEDIA_BUCKET,
    P_ALB_PREFIX_LIST,
    P_RELEASE_TAG,
    P_REPOSITORY_URI,
    P_SERVICE_TAG,
    REDIS,
    SG_ECS,
    USER_POOL,
    USER_POOL_CLIENT,
    RenderContext,
    service_id,
    subnets,
    task_definition_id,
)
from harness.deploy.data import add_bucket, add_cache, add_database
from harness.deploy.edge import add_distribution, render_edge
from harness.deploy.identity import add_cognito, add_email, add_env_contract
from harness.deploy.naming import DB_ROLES_TASK, MIGRATE_TASK, DeployNames
from harness.deploy.network import add_network
from harness.deploy.template import Template, get_att, join, ref
from harness.topology import Topology

IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


def render_app_template(topology: Topology, *, with_services: bool = True) -> Template:
    """The app stack. `with_services=False` is the first deploy's infrastructure step: everything but the ECS
    services (which would start before their database roles and schema exist)."""
    names = DeployNames.of(topology)
    template = Template(
        description=f"{names.app_stack}: {topology.project.name} {topology.env} "
        f"(rendered from {topology.source.name} by harness/deploy; do not edit)"
    )
    ctx = RenderContext(topology, names, template, with_services=with_services)
    template.parameter(
        P_RELEASE_TAG, "Image tag of this release (one-off tasks: database roles, migrations)",
        AllowedPattern=IMAGE_TAG_PATTERN,
    )  # fmt: skip
    template.parameter(
        P_SERVICE_TAG, "Image tag the services run (moved to the release tag once migrations succeeded)",
        AllowedPattern=IMAGE_TAG_PATTERN,
    )  # fmt: skip
    template.parameter(P_REPOSITORY_URI, "ECR repository of the app image (output of the base stack)")
    template.parameter(
        P_ALB_PREFIX_LIST,
        "CloudFront origin-facing managed prefix list of the region (empty: the ALB accepts 0.0.0.0/0)",
        default="",
    )
    add_network(ctx)
    add_database(ctx)
    add_cache(ctx)
    add_bucket(ctx)
    add_email(ctx)
    add_cognito(ctx)
    add_env_contract(ctx)
    add_compute(ctx)
    add_distribution(ctx)
    add_alarms(ctx)
    _add_outputs(ctx)
    return template


def render_edge_template(topology: Topology) -> Template:
    names = DeployNames.of(topology)
    return render_edge(RenderContext(topology, names, Template(description="")))


def render_base_template(topology: Topology) -> Template:
    names = DeployNames.of(topology)
    return render_base(RenderContext(topology, names, Template(description="")))


STACKS = ("base", "edge", "app")


def render_stack_template(topology: Topology, stack: str = "app") -> Template:
    """The template of one of the environment's stacks: `base`, `edge` or `app` (what `--render` prints)."""
    if stack == "base":
        return render_base_template(topology)
    if stack == "edge":
        return render_edge_template(topology)
    return render_app_template(topology)


def _add_outputs(ctx: RenderContext) -> None:
    """What the rollout and the scenario gate read: names and endpoints, never a secret."""
    t, names = ctx.template, ctx.names
    t.output("Environment", names.env, "topology environment")
    t.output("Region", ref("AWS::Region"), "region of the stack")
    t.output(
        "SesEventsQueueUrl", ref("SesEventsQueue"), "SES events (sends, bounces, deliveries) for the gate"
    )
    t.output("ApiUrl", f"https://{names.api_domain}", "public API (CloudFront -> ALB)")
    t.output("CloudFrontDomainName", get_att(DISTRIBUTION, "DomainName"), "CloudFront distribution")
    t.output("LoadBalancerDnsName", get_att(ALB, "DNSName"), "ALB (reachable from CloudFront only)")
    t.output("ClusterName", ref(CLUSTER), "ECS cluster")
    t.output("AppSubnetIds", join(",", subnets("App")), "private app subnets (one-off tasks run there)")
    t.output("TaskSecurityGroupId", get_att(SG_ECS, "GroupId"), "security group of ECS tasks")
    t.output("DbRolesTaskDefinition", ref(task_definition_id(DB_ROLES_TASK)), "one-off: database roles")
    t.output("MigrateTaskDefinition", ref(task_definition_id(MIGRATE_TASK)), "one-off: migrations")
    t.output("MediaBucketName", ref(MEDIA_BUCKET), "S3 media bucket")
    t.output("UserPoolId", ref(USER_POOL), "Cognito user pool")
    t.output(
        "UserPoolClientId", ref(USER_POOL_CLIENT), "Cognito app client (its secret is in Secrets Manager)"
    )
    t.output("DatabaseEndpoint", get_att(DATABASE, "Endpoint.Address"), "RDS endpoint (private)")
    t.output(
        "RedisEndpoint", get_att(REDIS, "PrimaryEndPoint.Address"), "ElastiCache primary endpoint (private)"
    )
    if ctx.with_services:
        services = ",".join(f"{n}={names.service(n)}" for n in ctx.topology.services)
        t.output("Services", services, "service name -> ECS service")
        for name in ctx.topology.services:
            t.output(f"{service_id(name)}Name", get_att(service_id(name), "Name"), f"ECS service {name}")
