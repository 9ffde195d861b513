"""The price table `harness cost` reads: on-demand list prices per region, in USD, no network.

ESTIMATES. These figures were written down from memory of AWS's public price pages (us-east-1 list prices,
scaled by the usual me-south-1 premium of about 10 %); they have NOT been checked against AWS's own data.
The authoritative source is the AWS Price List API's offer files
(`https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<service>/current/me-south-1/index.json`, e.g.
service codes AmazonECS, AmazonRDS, AmazonElastiCache, AmazonEC2 for NAT gateways, AWSELB, AmazonVPC,
AWSSecretsManager, AmazonCloudWatch, awswaf, AmazonCloudFront, AmazonS3, AmazonSES, AmazonECR): to refresh a
figure, read it there, update it here with the date, and the cost fixture test (tests/deploy/test_cost.py)
shows what moved.

Usage-priced services (traffic, storage, email) need an assumption of usage: `USAGE` names each one, at the
architecture's MVP scale (docs/aws-architecture.md, "Cost Estimate").
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class PriceTable:
    region: str
    as_of: str  # when the figures were written down
    source: str
    verified: bool  # False: estimates, labelled as such wherever they are shown
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    rds_instance_hour: dict[str, float]  # single-AZ PostgreSQL; Multi-AZ is twice this
    rds_gp3_gb_month: float  # single-AZ; Multi-AZ is twice this
    elasticache_node_hour: dict[str, float]
    nat_gateway_hour: float
    nat_gateway_gb: float
    alb_hour: float
    alb_lcu_hour: float
    interface_endpoint_hour: float  # per endpoint per AZ
    interface_endpoint_gb: float
    secret_month: float
    alarm_month: float  # standard-resolution metric alarm
    waf_web_acl_month: float
    waf_rule_month: float  # each rule, managed rule groups included
    waf_million_requests: float
    cloudfront_gb_out: float
    cloudfront_10k_https: float
    s3_gb_month: float
    ses_1000_emails: float
    logs_gb_ingested: float
    ecr_gb_month: float
    cognito_mau_free: int


ME_SOUTH_1 = PriceTable(
    region="me-south-1",
    as_of="2026-12-02",
    source="estimates from AWS's public price pages (not verified here; refresh from the AWS Price List API "
    "offer files for me-south-1)",
    verified=False,
    fargate_vcpu_hour=0.04456,
    fargate_gb_hour=0.00489,
    rds_instance_hour={
        "db.t4g.micro": 0.018,
        "db.t4g.small": 0.036,
        "db.t4g.medium": 0.072,
        "db.t4g.large": 0.144,
        "db.m7g.large": 0.187,
    },
    rds_gp3_gb_month=0.127,
    elasticache_node_hour={"cache.t4g.micro": 0.0176, "cache.t4g.small": 0.035, "cache.t4g.medium": 0.070},
    nat_gateway_hour=0.050,
    nat_gateway_gb=0.050,
    alb_hour=0.0248,
    alb_lcu_hour=0.0088,
    interface_endpoint_hour=0.011,
    interface_endpoint_gb=0.011,
    secret_month=0.40,
    alarm_month=0.10,
    waf_web_acl_month=5.00,
    waf_rule_month=1.00,
    waf_million_requests=0.60,
    cloudfront_gb_out=0.114,  # CloudFront is global: the Middle East edge price
    cloudfront_10k_https=0.0120,
    s3_gb_month=0.025,
    ses_1000_emails=0.10,
    logs_gb_ingested=0.57,
    ecr_gb_month=0.10,
    cognito_mau_free=10_000,
)

PRICE_TABLES = {ME_SOUTH_1.region: ME_SOUTH_1}


@dataclass(frozen=True)
class Usage:
    """Assumed monthly usage for the usage-priced parts (the architecture's MVP: low traffic)."""

    nat_gb: float = 20.0
    alb_lcu: float = 1.0  # average LCUs over the month
    interface_endpoint_gb: float = 10.0  # across all endpoints
    web_requests_million: float = 2.0
    cloudfront_gb_out: float = 50.0
    s3_gb: float = 10.0
    emails: int = 10_000
    logs_gb: float = 5.0
    ecr_gb: float = 2.0
    cognito_mau: int = 1_000


USAGE = Usage()
