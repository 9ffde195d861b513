"""CloudFront in front of the ALB (TLS 1.2+, WAF attached), and the us-east-1 "edge" stack that holds what
CloudFront only accepts from us-east-1: the WAF web ACL (AWS managed rules + a rate-based rule) and the
viewer certificate."""

from __future__ import annotations

from harness.deploy.context import ALB, DISTRIBUTION, P_CLOUDFRONT_CERT, P_WEB_ACL, RenderContext
from harness.deploy.template import NO_VALUE, Json, Template, get_att, ref

# AWS-managed CloudFront policies (fixed ids, the same in every account): an API is never cached, and the
# origin sees every header, cookie and query string the viewer sent.
CACHE_POLICY_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ORIGIN_REQUEST_POLICY_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
CLOUDFRONT_HOSTED_ZONE_ID = "Z2FDTNDATAQYW2"  # the one zone id of every CloudFront alias record
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
WEB_ACL = "WebAcl"
EDGE_CERTIFICATE = "CloudFrontCertificate"


def add_distribution(ctx: RenderContext) -> None:
    t, names, edge = ctx.template, ctx.names, ctx.topology.deploy.edge
    t.parameter(P_WEB_ACL, "ARN of the CloudFront-scope WAF web ACL (output of the edge stack)")
    t.parameter(P_CLOUDFRONT_CERT, "ARN of the us-east-1 ACM certificate of the API domain (edge stack)")
    t.add(
        DISTRIBUTION,
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": {
                "Enabled": True,
                "Comment": f"{names.app_stack} API",
                "Aliases": [names.api_domain],
                "HttpVersion": "http2and3",
                "IPV6Enabled": True,
                "PriceClass": "PriceClass_200",  # includes the Middle East edge locations
                "WebACLId": ref(P_WEB_ACL),
                "ViewerCertificate": {
                    "AcmCertificateArn": ref(P_CLOUDFRONT_CERT),
                    "SslSupportMethod": "sni-only",
                    "MinimumProtocolVersion": "TLSv1.2_2021",
                },
                "Origins": [
                    {
                        "Id": "alb",
                        "DomainName": names.origin_domain,
                        "CustomOriginConfig": {
                            "OriginProtocolPolicy": "https-only",
                            "HTTPSPort": 443,
                            "OriginSSLProtocols": ["TLSv1.2"],
                            "OriginReadTimeout": 60,
                        },
                    }
                ],
                "DefaultCacheBehavior": {
                    "TargetOriginId": "alb",
                    "ViewerProtocolPolicy": "https-only",
                    "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
                    "CachedMethods": ["GET", "HEAD"],
                    "CachePolicyId": CACHE_POLICY_CACHING_DISABLED,
                    "OriginRequestPolicyId": ORIGIN_REQUEST_POLICY_ALL_VIEWER,
                    "Compress": True,
                },
                # A 5xx of the origin is not cached: the next request reaches a healthy task.
                "CustomErrorResponses": [
                    {"ErrorCode": code, "ErrorCachingMinTTL": 0} for code in (500, 502, 503, 504)
                ],
            },
            "Tags": ctx.tags("edge"),
        },
    )
    if edge.hosted_zone_id:
        t.add(
            "OriginRecord",
            "AWS::Route53::RecordSet",
            {
                "HostedZoneId": edge.hosted_zone_id,
                "Name": names.origin_domain,
                "Type": "A",
                "AliasTarget": {
                    "DNSName": get_att(ALB, "DNSName"),
                    "HostedZoneId": get_att(ALB, "CanonicalHostedZoneID"),
                },
            },
        )
        t.add(
            "ApiRecord",
            "AWS::Route53::RecordSet",
            {
                "HostedZoneId": edge.hosted_zone_id,
                "Name": names.api_domain,
                "Type": "A",
                "AliasTarget": {
                    "DNSName": get_att(DISTRIBUTION, "DomainName"),
                    "HostedZoneId": CLOUDFRONT_HOSTED_ZONE_ID,
                },
            },
        )


def render_edge(ctx: RenderContext) -> Template:
    """The us-east-1 stack: WAF web ACL (CLOUDFRONT scope) and, unless given, the viewer certificate."""
    names, edge = ctx.names, ctx.topology.deploy.edge
    t = Template(
        description=f"{names.edge_stack}: WAF and certificate for the CloudFront of {names.app_stack}"
    )
    rules: list[Json] = []
    for priority, group in enumerate(MANAGED_RULE_GROUPS):
        rules.append(
            {
                "Name": group,
                "Priority": priority,
                "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
                "VisibilityConfig": _visibility(group),
            }
        )
    rules.append(
        {
            "Name": "RateLimitPerIp",
            "Priority": len(MANAGED_RULE_GROUPS),
            "Action": {"Block": {}},
            "Statement": {
                "RateBasedStatement": {"Limit": edge.waf_rate_limit_per_5_min, "AggregateKeyType": "IP"}
            },
            "VisibilityConfig": _visibility("RateLimitPerIp"),
        }
    )
    t.add(
        WEB_ACL,
        "AWS::WAFv2::WebACL",
        {
            "Name": f"{names.app_stack}-api",
            "Scope": "CLOUDFRONT",
            "DefaultAction": {"Allow": {}},
            "Rules": rules,
            "VisibilityConfig": _visibility(f"{names.app_stack}-api"),
            "Tags": ctx.tags("edge"),
        },
    )
    t.output("WebAclArn", get_att(WEB_ACL, "Arn"), "CloudFront-scope WAF web ACL")
    if edge.cloudfront_certificate_arn:
        t.output(
            "CertificateArn", edge.cloudfront_certificate_arn, "viewer certificate (given in the topology)"
        )
    else:
        validation: Json = NO_VALUE
        if edge.hosted_zone_id:
            validation = [{"DomainName": names.api_domain, "HostedZoneId": edge.hosted_zone_id}]
        t.add(
            EDGE_CERTIFICATE,
            "AWS::CertificateManager::Certificate",
            {
                "DomainName": names.api_domain,
                "ValidationMethod": "DNS",
                "DomainValidationOptions": validation,
                "Tags": ctx.tags("edge"),
            },
        )
        t.output("CertificateArn", ref(EDGE_CERTIFICATE), "viewer certificate of the API domain")
    return t


def _visibility(metric: str) -> Json:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}
