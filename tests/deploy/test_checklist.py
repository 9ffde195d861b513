"""Every item of the architecture's checklist maps to what satisfies it: resources of the rendered stacks
(checked property by property), the CI workflow, or an explicit statement of why it is outside this repo."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deploy.render import render_stack_template
from harness.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
# The reference architecture, kept in the repo (a copy of the seed the team was given).
ARCHITECTURE = ROOT / "docs" / "aws-architecture.md"
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
Stacks = dict[str, dict[str, Any]]  # stack -> Resources


def of_type(stacks: Stacks, kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{s}.{lid}": r["Properties"]
        for s, res in stacks.items()
        for lid, r in res.items()
        if r["Type"] == kind
    }


def vpc(s: Stacks) -> list[str]:
    subnets = of_type(s, "AWS::EC2::Subnet")
    tiers: dict[str, set[int]] = {}
    for props in subnets.values():
        tier = next(t["Value"] for t in props["Tags"] if t["Key"] == "tier")
        tiers.setdefault(tier, set()).add(props["AvailabilityZone"]["Fn::Select"][0])
    assert tiers == {"public": {0, 1}, "app": {0, 1}, "data": {0, 1}}
    assert of_type(s, "AWS::EC2::NatGateway")
    return [*of_type(s, "AWS::EC2::VPC"), *subnets, *of_type(s, "AWS::EC2::NatGateway")]


def security_groups(s: Stacks) -> list[str]:
    groups = of_type(s, "AWS::EC2::SecurityGroup")
    ingress = of_type(s, "AWS::EC2::SecurityGroupIngress")
    egress = of_type(s, "AWS::EC2::SecurityGroupEgress")

    def rules(table: dict[str, dict[str, Any]], group: str, peer_key: str) -> set[tuple[int, str]]:
        out = set()
        for props in table.values():
            if props["GroupId"]["Fn::GetAtt"][0] == group:
                peer = props.get(peer_key, {}).get("Fn::GetAtt", ["cidr/prefix-list"])[0]
                out.add((props["FromPort"], peer))
        return out

    src, dst = "SourceSecurityGroupId", "DestinationSecurityGroupId"
    assert rules(ingress, "AlbSecurityGroup", src) == {(443, "cidr/prefix-list")}
    assert rules(egress, "AlbSecurityGroup", dst) == {(8000, "EcsSecurityGroup")}
    assert rules(ingress, "EcsSecurityGroup", src) == {(8000, "AlbSecurityGroup")}
    assert rules(egress, "EcsSecurityGroup", dst) == {
        (5432, "RdsSecurityGroup"), (6379, "RedisSecurityGroup"), (443, "cidr/prefix-list")
    }  # fmt: skip
    assert rules(ingress, "RdsSecurityGroup", src) == {(5432, "EcsSecurityGroup")}
    assert rules(ingress, "RedisSecurityGroup", src) == {(6379, "EcsSecurityGroup")}
    for name in ("RdsSecurityGroup", "RedisSecurityGroup"):
        assert rules(egress, name, dst) == set()
        assert groups[f"app.{name}"]["SecurityGroupEgress"][0]["CidrIp"] == "127.0.0.1/32"  # no egress
    return [*groups, *ingress, *egress]


def endpoints(s: Stacks) -> list[str]:
    found = of_type(s, "AWS::EC2::VPCEndpoint")
    names = {
        p["ServiceName"]["Fn::Sub"].split("${AWS::Region}.")[1]: p["VpcEndpointType"] for p in found.values()
    }
    assert names == {
        "s3": "Gateway",
        "ecr.api": "Interface",
        "ecr.dkr": "Interface",
        "secretsmanager": "Interface",
        "logs": "Interface",
    }
    return list(found)


def rds(s: Stacks) -> list[str]:
    ((lid, db),) = of_type(s, "AWS::RDS::DBInstance").items()
    assert (db["Engine"], db["EngineVersion"].split(".")[0], db["MultiAZ"], db["StorageEncrypted"]) == (
        "postgres",
        "16",
        True,
        True,
    )
    assert (
        db["StorageType"],
        db["AllocatedStorage"],
        db["MaxAllocatedStorage"],
        db["BackupRetentionPeriod"],
    ) == ("gp3", "20", 100, 7)
    ((pg_id, pg),) = of_type(s, "AWS::RDS::DBParameterGroup").items()
    assert pg["Parameters"]["rds.force_ssl"] == "1"
    return [lid, pg_id]


def redis(s: Stacks) -> list[str]:
    ((lid, rg),) = of_type(s, "AWS::ElastiCache::ReplicationGroup").items()
    assert rg["EngineVersion"].startswith("7") and rg["MultiAZEnabled"] and rg["AutomaticFailoverEnabled"]
    assert rg["TransitEncryptionEnabled"] and rg["AtRestEncryptionEnabled"] and rg["NumCacheClusters"] >= 2
    users = of_type(s, "AWS::ElastiCache::User")
    assert any("~rl:*" in u["AccessString"] for u in users.values())
    return [lid, *users]


def bucket(s: Stacks) -> list[str]:
    media = {k: v for k, v in of_type(s, "AWS::S3::Bucket").items() if k.startswith("app.")}
    ((lid, b),) = media.items()
    assert all(b["PublicAccessBlockConfiguration"].values())
    assert b["VersioningConfiguration"] == {"Status": "Enabled"}
    assert b["LifecycleConfiguration"]["Rules"][0]["Transitions"] == [
        {"TransitionInDays": 90, "StorageClass": "STANDARD_IA"}
    ]
    return [lid]


def ecr(s: Stacks) -> list[str]:
    repos = of_type(s, "AWS::ECR::Repository")
    assert [p["RepositoryName"] for p in repos.values()] == ["saas-backend"]
    workflow = WORKFLOW.read_text()
    assert "docker build -f Dockerfile" in workflow and "docker push" in workflow
    # One image for every use: Docker tier, backend, worker, one-off tasks.
    assert (ROOT / "Dockerfile").is_file()
    return [*repos, ".github/workflows/deploy.yml (build, push)"]


def ecs(s: Stacks) -> list[str]:
    services = of_type(s, "AWS::ECS::Service")
    assert {p["ServiceName"] for p in services.values()} == {"saas-staging-backend", "saas-staging-worker"}
    backend = services["app.BackendService"]
    assert backend["DesiredCount"] == 2 and backend["LaunchType"] == "FARGATE"
    assert backend["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    assert backend["DeploymentConfiguration"]["MaximumPercent"] == 200
    targets = of_type(s, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (
        targets["app.BackendServiceScalableTarget"]["MinCapacity"],
        targets["app.BackendServiceScalableTarget"]["MaxCapacity"],
    ) == (2, 6)
    policy = of_type(s, "AWS::ApplicationAutoScaling::ScalingPolicy")["app.BackendServiceCpuScaling"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70
    images = {
        p["ContainerDefinitions"][0]["Image"]["Fn::Sub"]
        for p in of_type(s, "AWS::ECS::TaskDefinition").values()
    }
    assert len({i.split(":")[0] for i in images}) == 1  # one image, several entrypoints
    return [*of_type(s, "AWS::ECS::Cluster"), *services, *targets]


def alb(s: Stacks) -> list[str]:
    listeners = of_type(s, "AWS::ElasticLoadBalancingV2::Listener")
    assert [(p["Port"], p["Protocol"]) for p in listeners.values()] == [(443, "HTTPS")]
    ((tg_id, tg),) = of_type(s, "AWS::ElasticLoadBalancingV2::TargetGroup").items()
    assert tg["HealthCheckPath"] == "/api/v1/health" and tg["Port"] == 8000
    return [*of_type(s, "AWS::ElasticLoadBalancingV2::LoadBalancer"), *listeners, tg_id]


def edge(s: Stacks) -> list[str]:
    ((lid, dist),) = of_type(s, "AWS::CloudFront::Distribution").items()
    config = dist["DistributionConfig"]
    assert config["WebACLId"] == {"Ref": "WebAclArn"}
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    ((acl_id, acl),) = of_type(s, "AWS::WAFv2::WebACL").items()
    assert acl["Scope"] == "CLOUDFRONT" and acl_id.startswith("edge.")  # CloudFront takes us-east-1 ACLs only
    statements = [r["Statement"] for r in acl["Rules"]]
    assert any("ManagedRuleGroupStatement" in st for st in statements)
    assert any("RateBasedStatement" in st for st in statements)
    return [lid, acl_id]


def ses(s: Stacks) -> list[str]:
    ((lid, identity),) = of_type(s, "AWS::SES::EmailIdentity").items()
    assert identity["EmailIdentity"] == "yourdomain.com" and identity["DkimAttributes"]["SigningEnabled"]
    ((cs_id, _),) = of_type(s, "AWS::SES::ConfigurationSet").items()
    destinations = of_type(s, "AWS::SES::ConfigurationSetEventDestination")
    cloudwatch = [d for d in destinations.values() if "CloudWatchDestination" in d["EventDestination"]]
    assert {"bounce", "complaint", "delivery"} <= set(cloudwatch[0]["EventDestination"]["MatchingEventTypes"])
    return [lid, cs_id, *destinations]


def cognito(s: Stacks) -> list[str]:
    ((lid, pool),) = of_type(s, "AWS::Cognito::UserPool").items()
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == 12 and all(
        policy[k] for k in ("RequireUppercase", "RequireLowercase", "RequireNumbers", "RequireSymbols")
    )
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    ((client_id, client),) = of_type(s, "AWS::Cognito::UserPoolClient").items()
    assert client["GenerateSecret"] and client["RefreshTokenRotation"]["RetryGracePeriodSeconds"] == 60
    return [lid, client_id, *of_type(s, "AWS::Cognito::UserPoolGroup")]


def secrets(s: Stacks, topology: Topology) -> list[str]:
    found = of_type(s, "AWS::SecretsManager::Secret")
    names = {p["Name"] for p in found.values()}
    assert {x.name for x in topology.secrets} <= names
    params = of_type(s, "AWS::SSM::Parameter")
    assert {p.name for p in topology.parameters} == {p["Name"] for p in params.values()}
    return [*found, *params]


def workflow(_: Stacks) -> list[str]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    steps = " | ".join(
        f"{job}: {step.get('name', '')} {step.get('run', '')}"
        for job, spec in jobs.items()
        for step in spec["steps"]
    )
    order = ["nox -s tests", "docker build", "docker push", "migrate", "harness deploy --env staging --yes"]
    positions = [steps.index(marker) for marker in order]
    assert positions == sorted(positions), steps
    assert jobs["build"]["needs"] == "test" and jobs["deploy-staging"]["needs"] == "build"
    return [".github/workflows/deploy.yml: " + " → ".join(jobs)]


def vercel(_: Stacks) -> list[str]:
    # The frontend is deployed by Vercel's own Git integration (aws-architecture.md: "zero config"); it has no
    # AWS resource and no code in this repo to check.
    return ["out of scope: Vercel project (frontend repo), not AWS"]


def log_groups(s: Stacks) -> list[str]:
    groups = of_type(s, "AWS::Logs::LogGroup")
    names = {p["LogGroupName"] for p in groups.values()}
    assert {"/ecs/saas-staging/backend", "/ecs/saas-staging/worker"} <= names
    return list(groups)


def alarms(s: Stacks) -> list[str]:
    found = of_type(s, "AWS::CloudWatch::Alarm")
    cpu = [k for k, p in found.items() if p.get("MetricName") == "CPUUtilization"]
    assert cpu and all(found[k]["Threshold"] == 80 for k in cpu)
    (conn,) = [p for p in found.values() if p.get("MetricName") == "DatabaseConnections"]
    assert conn["Threshold"] == 320  # 80 % of max_connections = 400 (set in the parameter group)
    (rate,) = [p for p in found.values() if "Metrics" in p]
    assert rate["Threshold"] == 1 and "HTTPCode_Target_5XX_Count" in str(rate["Metrics"])
    return list(found)


# Checklist item (its start, as written in aws-architecture.md) -> what satisfies it.
CHECKLIST: dict[str, Callable[..., list[str]]] = {
    "VPC created with public, private-app, private-data subnets": vpc,
    "Security groups configured per table above": security_groups,
    "VPC endpoints for S3, ECR, Secrets Manager, CloudWatch Logs": endpoints,
    "RDS PostgreSQL provisioned with Multi-AZ": rds,
    "ElastiCache Redis provisioned with Multi-AZ": redis,
    "S3 bucket with Block Public Access": bucket,
    "ECR repository created": ecr,
    "ECS cluster with backend + worker services": ecs,
    "ALB with HTTPS listener": alb,
    "CloudFront distribution + WAF rules attached": edge,
    "SES domain identity verified, DKIM configured": ses,
    "Cognito User Pool configured": cognito,
    "Secrets Manager populated with all secrets": secrets,
    "GitHub Actions workflow": workflow,
    "Vercel project linked": vercel,
    "CloudWatch log groups created for backend and worker": log_groups,
    "CloudWatch alarms": alarms,
}


def checklist_items() -> list[str]:
    text = ARCHITECTURE.read_text()
    section = text.split("## Checklist", 1)[1]
    return [m.group(1).strip() for m in re.finditer(r"^- \[[ x]\] (.+)$", section, re.M)]


def test_every_checklist_item_is_mapped() -> None:
    items = checklist_items()
    assert len(items) >= 17
    unmapped = [item for item in items if not any(item.startswith(prefix) for prefix in CHECKLIST)]
    assert not unmapped, f"checklist items without a mapping: {unmapped}"


@pytest.mark.parametrize("prefix", list(CHECKLIST))
def test_checklist_item_is_satisfied(prefix: str, staging: Topology) -> None:
    stacks = {
        name: render_stack_template(staging, name).as_dict()["Resources"] for name in ("base", "edge", "app")
    }
    check = CHECKLIST[prefix]
    found = check(stacks, staging) if check is secrets else check(stacks)
    assert found, prefix
