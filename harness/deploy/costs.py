"""`harness cost --env ENV`: the monthly cost of an environment's rendered stacks, from the price table in
harness/deploy/prices.py (no network), per service and in total, beside the architecture's own table.

Costs are read from the templates themselves (the same ones a deploy applies): desired counts and task sizes,
instance classes, Multi-AZ, node counts, NAT gateways, endpoints per AZ, secrets, alarms, WAF rules. A plan
uses the same function on the deployed and the new template to show what a change costs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.deploy.prices import HOURS_PER_MONTH, PRICE_TABLES, USAGE, PriceTable, Usage
from harness.errors import DeployError

# docs/aws-architecture.md, "Cost Estimate (MVP, Monthly)": the hand-made table, for comparison.
ARCHITECTURE_TABLE: dict[str, float] = {
    "ECS Fargate (backend)": 35, "ECS Fargate (worker)": 18, "RDS PostgreSQL": 70, "ElastiCache Redis": 25,
    "S3": 1, "CloudFront + WAF": 10, "SES": 1, "Cognito": 0, "Secrets Manager": 8, "NAT Gateway": 35,
    "Vercel (frontend)": 20,
}  # fmt: skip
ARCHITECTURE_TOTAL = 223.0
NOT_IN_STACKS = {"Vercel (frontend)": "the frontend is hosted outside these stacks"}


@dataclass(frozen=True)
class ResourceCost:
    logical_id: str
    service: str
    usd_month: float
    basis: str  # how it was computed, e.g. "2 x (0.5 vCPU + 1 GB) x 730 h"


@dataclass(frozen=True)
class _Ctx:
    resources: Mapping[str, Any]
    prices: PriceTable
    usage: Usage
    counts: Mapping[str, int]  # resource type -> how many the template has (usage is shared among them)


def _number(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _fargate(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    count = _number(props.get("DesiredCount"), 1)
    task_ref = props.get("TaskDefinition")
    task_id = task_ref.get("Ref") if isinstance(task_ref, dict) else None
    task = ctx.resources.get(str(task_id), {}).get("Properties", {})
    vcpu, gb = _number(task.get("Cpu"), 256) / 1024, _number(task.get("Memory"), 512) / 1024
    hourly = vcpu * ctx.prices.fargate_vcpu_hour + gb * ctx.prices.fargate_gb_hour
    name = lid.removesuffix("Service").lower() or lid
    basis = f"{count:g} x ({vcpu:g} vCPU + {gb:g} GB) x {HOURS_PER_MONTH:g} h"
    return [ResourceCost(lid, f"ECS Fargate ({name})", count * hourly * HOURS_PER_MONTH, basis)]


def _rds(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    klass = str(props.get("DBInstanceClass", ""))
    if klass not in ctx.prices.rds_instance_hour:
        raise DeployError(
            f"{lid}: no price for RDS instance class {klass} in the {ctx.prices.region} price table",
            hint=f"add it to rds_instance_hour in harness/deploy/prices.py (known: "
            f"{', '.join(sorted(ctx.prices.rds_instance_hour))})",
        )
    azs = 2 if props.get("MultiAZ") in (True, "true", "True") else 1
    storage = _number(props.get("AllocatedStorage"), 20)
    usd = azs * (
        ctx.prices.rds_instance_hour[klass] * HOURS_PER_MONTH + storage * ctx.prices.rds_gp3_gb_month
    )
    costs = [
        ResourceCost(lid, "RDS PostgreSQL", usd, f"{klass} x {azs} AZ x 730 h + {storage:g} GB gp3 x {azs}")
    ]
    if props.get("ManageMasterUserPassword") in (True, "true"):
        costs.append(ResourceCost(f"{lid}.MasterUserSecret", "Secrets Manager", ctx.prices.secret_month,
                                  "the RDS-managed master secret"))  # fmt: skip
    return costs


def _elasticache(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    node = str(props.get("CacheNodeType", ""))
    if node not in ctx.prices.elasticache_node_hour:
        raise DeployError(
            f"{lid}: no price for ElastiCache node type {node} in the {ctx.prices.region} price table",
            hint="add it to elasticache_node_hour in harness/deploy/prices.py",
        )
    nodes = _number(props.get("NumCacheClusters"), 1)
    usd = nodes * ctx.prices.elasticache_node_hour[node] * HOURS_PER_MONTH
    return [ResourceCost(lid, "ElastiCache Redis", usd, f"{nodes:g} x {node} x 730 h")]


def _share(ctx: _Ctx, kind: str) -> float:
    return 1.0 / max(ctx.counts.get(kind, 1), 1)


def _nat(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    gb = ctx.usage.nat_gb * _share(ctx, "AWS::EC2::NatGateway")
    usd = ctx.prices.nat_gateway_hour * HOURS_PER_MONTH + gb * ctx.prices.nat_gateway_gb
    return [ResourceCost(lid, "NAT Gateway", usd, f"730 h + {gb:g} GB processed (assumed)")]


def _alb(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    usd = (ctx.prices.alb_hour + ctx.usage.alb_lcu * ctx.prices.alb_lcu_hour) * HOURS_PER_MONTH
    return [
        ResourceCost(lid, "Application Load Balancer", usd, f"730 h + {ctx.usage.alb_lcu:g} LCU (assumed)")
    ]


def _endpoint(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    if props.get("VpcEndpointType") != "Interface":
        return [ResourceCost(lid, "VPC endpoints", 0.0, "gateway endpoint: free")]
    azs = len(props.get("SubnetIds") or []) or 1
    gb = ctx.usage.interface_endpoint_gb * _share(ctx, "AWS::EC2::VPCEndpoint")
    usd = azs * ctx.prices.interface_endpoint_hour * HOURS_PER_MONTH + gb * ctx.prices.interface_endpoint_gb
    return [ResourceCost(lid, "VPC endpoints", usd, f"{azs} AZ x 730 h + {gb:g} GB (assumed)")]


def _waf(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    rules = len(props.get("Rules") or [])
    usd = (ctx.prices.waf_web_acl_month + rules * ctx.prices.waf_rule_month
           + ctx.usage.web_requests_million * ctx.prices.waf_million_requests)  # fmt: skip
    basis = f"1 web ACL + {rules} rules + {ctx.usage.web_requests_million:g} M requests (assumed)"
    return [ResourceCost(lid, "CloudFront + WAF", usd, basis)]


def _cloudfront(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    requests_10k = ctx.usage.web_requests_million * 100
    usd = (
        ctx.usage.cloudfront_gb_out * ctx.prices.cloudfront_gb_out
        + requests_10k * ctx.prices.cloudfront_10k_https
    )
    basis = f"{ctx.usage.cloudfront_gb_out:g} GB out + {ctx.usage.web_requests_million:g} M HTTPS requests (assumed)"
    return [ResourceCost(lid, "CloudFront + WAF", usd, basis)]


def _flat(
    service: str, price: Callable[[PriceTable], float], basis: str
) -> Callable[..., list[ResourceCost]]:
    def cost(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
        return [ResourceCost(lid, service, price(ctx.prices), basis)]

    return cost


def _bucket(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    if "Artifacts" in lid:  # the base stack's templates and release records: kilobytes
        return [ResourceCost(lid, "S3", 0.0, "templates and release records (KB)")]
    usd = ctx.usage.s3_gb * ctx.prices.s3_gb_month
    return [ResourceCost(lid, "S3", usd, f"{ctx.usage.s3_gb:g} GB (assumed; requests not counted)")]


def _ses(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    usd = ctx.usage.emails / 1000 * ctx.prices.ses_1000_emails
    return [ResourceCost(lid, "SES", usd, f"{ctx.usage.emails} emails (assumed)")]


def _cognito(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    basis = f"{ctx.usage.cognito_mau} MAU (assumed), under the {ctx.prices.cognito_mau_free} free"
    return [ResourceCost(lid, "Cognito", 0.0, basis)]


def _logs(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    gb = ctx.usage.logs_gb * _share(ctx, "AWS::Logs::LogGroup")
    return [
        ResourceCost(lid, "CloudWatch", gb * ctx.prices.logs_gb_ingested, f"{gb:g} GB ingested (assumed)")
    ]


def _ecr(lid: str, props: Mapping[str, Any], ctx: _Ctx) -> list[ResourceCost]:
    usd = ctx.usage.ecr_gb * ctx.prices.ecr_gb_month
    return [ResourceCost(lid, "ECR", usd, f"{ctx.usage.ecr_gb:g} GB of images (assumed)")]


PRICED: dict[str, Callable[[str, Mapping[str, Any], _Ctx], list[ResourceCost]]] = {
    "AWS::ECS::Service": _fargate,
    "AWS::RDS::DBInstance": _rds,
    "AWS::ElastiCache::ReplicationGroup": _elasticache,
    "AWS::EC2::NatGateway": _nat,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _alb,
    "AWS::EC2::VPCEndpoint": _endpoint,
    "AWS::WAFv2::WebACL": _waf,
    "AWS::CloudFront::Distribution": _cloudfront,
    "AWS::SecretsManager::Secret": _flat("Secrets Manager", lambda p: p.secret_month, "1 secret"),
    "AWS::CloudWatch::Alarm": _flat("CloudWatch", lambda p: p.alarm_month, "1 standard alarm"),
    "AWS::S3::Bucket": _bucket,
    "AWS::SES::EmailIdentity": _ses,
    "AWS::Cognito::UserPool": _cognito,
    "AWS::Logs::LogGroup": _logs,
    "AWS::ECR::Repository": _ecr,
}


def template_costs(
    template: Mapping[str, Any], *, prices: PriceTable, usage: Usage = USAGE
) -> list[ResourceCost]:
    """The monthly cost of each priced resource of a template (resources of other types cost nothing here)."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    counts: dict[str, int] = {}
    for resource in resources.values():
        counts[resource.get("Type", "")] = counts.get(resource.get("Type", ""), 0) + 1
    ctx = _Ctx(resources, prices, usage, counts)
    costs: list[ResourceCost] = []
    for lid, resource in sorted(resources.items()):
        price = PRICED.get(resource.get("Type", ""))
        if price is not None:
            costs += price(lid, resource.get("Properties", {}), ctx)
    return costs


def price_table(region: str) -> PriceTable:
    if region not in PRICE_TABLES:
        raise DeployError(
            f"no price table for region {region}",
            hint=f"harness/deploy/prices.py has: {', '.join(sorted(PRICE_TABLES))}; add one the same way",
        )
    return PRICE_TABLES[region]


def by_service(costs: list[ResourceCost]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for cost in costs:
        totals[cost.service] = totals.get(cost.service, 0.0) + cost.usd_month
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def environment_cost(topology: Any) -> dict[str, Any]:
    """`harness cost --json`: every stack of the environment rendered and priced."""
    from harness.deploy.render import STACKS, render_stack_template

    prices = price_table(topology.region)
    costs = [
        c
        for stack in STACKS
        for c in template_costs(render_stack_template(topology, stack).as_dict(), prices=prices)
    ]
    services = by_service(costs)
    total = sum(services.values())
    return {
        "env": topology.env,
        "region": prices.region,
        "price_table": {"as_of": prices.as_of, "source": prices.source, "verified": prices.verified},
        "total_usd_month": round(total, 2),
        "services": [
            {
                "service": name,
                "usd_month": round(usd, 2),
                "architecture_usd_month": ARCHITECTURE_TABLE.get(name),
            }
            for name, usd in services.items()
        ],
        "architecture": {
            "total_usd_month": ARCHITECTURE_TOTAL,
            "source": "docs/aws-architecture.md",
            "not_in_stacks": NOT_IN_STACKS,
        },
        "resources": [
            {
                "logical_id": c.logical_id,
                "service": c.service,
                "usd_month": round(c.usd_month, 2),
                "basis": c.basis,
            }
            for c in costs
            if c.usd_month
        ],
    }


def render_cost(report: dict[str, Any]) -> str:
    table = report["price_table"]
    label = "" if table["verified"] else "ESTIMATES — "
    lines = [
        f"monthly cost of {report['env']} ({report['region']}): {label}price table of {table['as_of']}, "
        f"{table['source']}",
        f"  {'service':<28} {'estimate':>10} {'architecture':>13}",
    ]
    for row in report["services"]:
        arch = row["architecture_usd_month"]
        lines.append(f"  {row['service']:<28} {'$' + format(row['usd_month'], ',.2f'):>10} "
                     f"{'' if arch is None else '~$' + format(arch, 'g'):>13}")  # fmt: skip
    shown = {row["service"] for row in report["services"]}
    for name, usd in ARCHITECTURE_TABLE.items():
        if name not in shown:
            why = NOT_IN_STACKS.get(name, "not in the rendered stacks")
            lines.append(f"  {name:<28} {'—':>10} {'~$' + format(usd, 'g'):>13}  ({why})")
    lines.append(f"  {'total':<28} {'$' + format(report['total_usd_month'], ',.2f'):>10} "
                 f"{'~$' + format(ARCHITECTURE_TOTAL, 'g'):>13}")  # fmt: skip
    return "\n".join(lines)


def run_cost_command(env: str, topology_path: Path | None, *, as_json: bool) -> int:
    from harness.topology import find_topology_file, load_topology

    topology = load_topology(topology_path or find_topology_file(), env=env)
    report = environment_cost(topology)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_cost(report) + "\n")
    return 0
