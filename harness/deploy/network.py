"""VPC with public / private-app / private-data subnets in 2 AZs, NAT, the security groups of the
architecture's table (and nothing wider), and the VPC endpoints (S3 gateway; ECR, Secrets Manager, Logs)."""

from __future__ import annotations

import ipaddress

from harness.deploy.context import (
    AZ_SUFFIXES,
    C_HAS_PREFIX_LIST,
    P_ALB_PREFIX_LIST,
    SG_ALB,
    SG_ECS,
    SG_ENDPOINTS,
    SG_RDS,
    SG_REDIS,
    SUBNET_TIERS,
    VPC,
    RenderContext,
    subnet,
    subnets,
)
from harness.deploy.template import NO_VALUE, Json, get_att, if_, ref, select_az, sub

# Third octet of each tier's /24 in AZ a (AZ b is the next one): room to grow each tier without renumbering.
TIER_OFFSETS = {"Public": 0, "App": 16, "Data": 32}
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "secretsmanager", "logs")
# A security group with an explicit egress list loses the default allow-all rule; this one-address rule is
# how CloudFormation spells "no egress at all" (the tables say "None" for the data tiers).
NO_EGRESS = [{"CidrIp": "127.0.0.1/32", "IpProtocol": "-1", "Description": "no egress"}]


def subnet_cidr(vpc_cidr: str, tier: str, az: int) -> str:
    network = ipaddress.ip_network(vpc_cidr)
    return str(list(network.subnets(new_prefix=24))[TIER_OFFSETS[tier] + az])


def add_network(ctx: RenderContext) -> None:
    t, net = ctx.template, ctx.topology.deploy.network
    t.add(
        VPC,
        "AWS::EC2::VPC",
        {
            "CidrBlock": net.vpc_cidr,
            "EnableDnsHostnames": True,
            "EnableDnsSupport": True,
            "Tags": [*ctx.tags("network"), {"Key": "Name", "Value": ctx.names.app_stack}],
        },
    )
    t.add("InternetGateway", "AWS::EC2::InternetGateway", {"Tags": ctx.tags("network")})
    t.add(
        "InternetGatewayAttachment",
        "AWS::EC2::VPCGatewayAttachment",
        {"VpcId": ref(VPC), "InternetGatewayId": ref("InternetGateway")},
    )
    for tier in SUBNET_TIERS:
        for az in range(len(AZ_SUFFIXES)):
            t.add(
                subnet(tier, az),
                "AWS::EC2::Subnet",
                {
                    "VpcId": ref(VPC),
                    "AvailabilityZone": select_az(az),
                    "CidrBlock": subnet_cidr(net.vpc_cidr, tier, az),
                    "MapPublicIpOnLaunch": False,
                    "Tags": [
                        *ctx.tags("network"),
                        {
                            "Key": "Name",
                            "Value": f"{ctx.names.app_stack}-{tier.lower()}-{AZ_SUFFIXES[az].lower()}",
                        },
                        {"Key": "tier", "Value": tier.lower()},
                    ],
                },
            )
    # Public tier: one route table to the internet gateway.
    t.add("PublicRouteTable", "AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": ctx.tags("network")})
    t.add(
        "PublicDefaultRoute",
        "AWS::EC2::Route",
        {
            "RouteTableId": ref("PublicRouteTable"),
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": ref("InternetGateway"),
        },
        depends_on=["InternetGatewayAttachment"],
    )
    for az in range(len(AZ_SUFFIXES)):
        t.add(
            f"PublicSubnet{AZ_SUFFIXES[az]}RouteTableAssociation",
            "AWS::EC2::SubnetRouteTableAssociation",
            {"SubnetId": ref(subnet("Public", az)), "RouteTableId": ref("PublicRouteTable")},
        )
    # NAT: one (MVP) or one per AZ; app subnets of an AZ without its own NAT use the first one.
    for n in range(net.nat_gateways):
        suffix = AZ_SUFFIXES[n]
        t.add(f"NatEip{suffix}", "AWS::EC2::EIP", {"Domain": "vpc", "Tags": ctx.tags("network")})
        t.add(
            f"NatGateway{suffix}",
            "AWS::EC2::NatGateway",
            {
                "AllocationId": get_att(f"NatEip{suffix}", "AllocationId"),
                "SubnetId": ref(subnet("Public", n)),
                "Tags": ctx.tags("network"),
            },
            depends_on=["InternetGatewayAttachment"],
        )
    # App tier: a route table per AZ, default route through NAT. Data tier: no route out at all.
    for az in range(len(AZ_SUFFIXES)):
        suffix = AZ_SUFFIXES[az]
        table = f"AppRouteTable{suffix}"
        t.add(table, "AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": ctx.tags("network")})
        t.add(
            f"AppDefaultRoute{suffix}",
            "AWS::EC2::Route",
            {
                "RouteTableId": ref(table),
                "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": ref(f"NatGateway{AZ_SUFFIXES[min(az, net.nat_gateways - 1)]}"),
            },
        )
        t.add(
            f"AppSubnet{suffix}RouteTableAssociation",
            "AWS::EC2::SubnetRouteTableAssociation",
            {"SubnetId": ref(subnet("App", az)), "RouteTableId": ref(table)},
        )
    t.add("DataRouteTable", "AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": ctx.tags("network")})
    for az in range(len(AZ_SUFFIXES)):
        t.add(
            f"DataSubnet{AZ_SUFFIXES[az]}RouteTableAssociation",
            "AWS::EC2::SubnetRouteTableAssociation",
            {"SubnetId": ref(subnet("Data", az)), "RouteTableId": ref("DataRouteTable")},
        )
    _add_security_groups(ctx)
    _add_endpoints(ctx)


def _group(ctx: RenderContext, logical_id: str, name: str, description: str) -> None:
    props: dict[str, Json] = {
        "GroupName": f"{ctx.names.app_stack}-{name}",
        "GroupDescription": description,
        "VpcId": ref(VPC),
        "Tags": [*ctx.tags("network"), {"Key": "Name", "Value": f"{ctx.names.app_stack}-{name}"}],
    }
    props["SecurityGroupEgress"] = NO_EGRESS  # egress rules are separate resources below, or none
    ctx.template.add(logical_id, "AWS::EC2::SecurityGroup", props)


def _rule(
    ctx: RenderContext,
    logical_id: str,
    direction: str,
    group: str,
    port: int,
    description: str,
    *,
    peer_group: str | None = None,
    cidr: Json = None,
    prefix_list: Json = None,
) -> None:
    props: dict[str, Json] = {
        "GroupId": get_att(group, "GroupId"),
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "Description": description,
    }
    if direction == "Ingress":
        if peer_group:
            props["SourceSecurityGroupId"] = get_att(peer_group, "GroupId")
        if cidr is not None:
            props["CidrIp"] = cidr
        if prefix_list is not None:
            props["SourcePrefixListId"] = prefix_list
    else:
        if peer_group:
            props["DestinationSecurityGroupId"] = get_att(peer_group, "GroupId")
        if cidr is not None:
            props["CidrIp"] = cidr
    ctx.template.add(logical_id, f"AWS::EC2::SecurityGroup{direction}", props)


def _add_security_groups(ctx: RenderContext) -> None:
    """The table of aws-architecture.md, rule for rule (plus the interface endpoints' own group)."""
    backend_port = _backend_port(ctx)
    _group(ctx, SG_ALB, "alb", "sg-alb: 443 from CloudFront; out to ECS tasks only")
    _group(ctx, SG_ECS, "ecs", "sg-ecs: app port from the ALB; out to RDS, Redis, AWS APIs")
    _group(ctx, SG_RDS, "rds", "sg-rds: 5432 from ECS tasks only; no egress")
    _group(ctx, SG_REDIS, "redis", "sg-redis: 6379 from ECS tasks only; no egress")
    _group(ctx, SG_ENDPOINTS, "endpoints", "VPC interface endpoints: 443 from ECS tasks only")
    t = ctx.template
    t.condition(C_HAS_PREFIX_LIST, {"Fn::Not": [{"Fn::Equals": [ref(P_ALB_PREFIX_LIST), ""]}]})
    _rule(
        ctx,
        "AlbIngressHttps",
        "Ingress",
        SG_ALB,
        443,
        "HTTPS from CloudFront (origin-facing prefix list)",
        cidr=if_(C_HAS_PREFIX_LIST, NO_VALUE, "0.0.0.0/0"),
        prefix_list=if_(C_HAS_PREFIX_LIST, ref(P_ALB_PREFIX_LIST), NO_VALUE),
    )
    _rule(ctx, "AlbEgressToEcs", "Egress", SG_ALB, backend_port, "to ECS tasks", peer_group=SG_ECS)
    _rule(ctx, "EcsIngressFromAlb", "Ingress", SG_ECS, backend_port, "from the ALB", peer_group=SG_ALB)
    _rule(ctx, "EcsEgressToRds", "Egress", SG_ECS, 5432, "to RDS", peer_group=SG_RDS)
    _rule(ctx, "EcsEgressToRedis", "Egress", SG_ECS, 6379, "to Redis", peer_group=SG_REDIS)
    _rule(
        ctx, "EcsEgressHttps", "Egress", SG_ECS, 443, "AWS APIs via NAT and VPC endpoints", cidr="0.0.0.0/0"
    )
    _rule(ctx, "RdsIngressFromEcs", "Ingress", SG_RDS, 5432, "from ECS tasks", peer_group=SG_ECS)
    _rule(ctx, "RedisIngressFromEcs", "Ingress", SG_REDIS, 6379, "from ECS tasks", peer_group=SG_ECS)
    _rule(ctx, "EndpointIngressFromEcs", "Ingress", SG_ENDPOINTS, 443, "from ECS tasks", peer_group=SG_ECS)


def _backend_port(ctx: RenderContext) -> int:
    ports = [s.port for s in ctx.topology.services.values() if s.port is not None]
    return ports[0] if ports else 8000


def _add_endpoints(ctx: RenderContext) -> None:
    t = ctx.template
    t.add(
        "S3GatewayEndpoint",
        "AWS::EC2::VPCEndpoint",
        {
            "VpcId": ref(VPC),
            "ServiceName": sub("com.amazonaws.${AWS::Region}.s3"),
            "VpcEndpointType": "Gateway",
            "RouteTableIds": [
                *(ref(f"AppRouteTable{s}") for s in AZ_SUFFIXES),
                ref("DataRouteTable"),
            ],
        },
    )
    for service in INTERFACE_ENDPOINTS:
        logical_id = "".join(p.capitalize() for p in service.split(".")) + "Endpoint"
        t.add(
            logical_id,
            "AWS::EC2::VPCEndpoint",
            {
                "VpcId": ref(VPC),
                "ServiceName": sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
                "VpcEndpointType": "Interface",
                "PrivateDnsEnabled": True,
                "SubnetIds": subnets("App"),
                "SecurityGroupIds": [get_att(SG_ENDPOINTS, "GroupId")],
            },
        )
