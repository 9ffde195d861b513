"""CloudWatch alarms of the checklist: CPU > 80 % (each ECS service and the database), RDS connections > 80 %
of `max_connections`, and the ALB's 5xx rate > 1 % of requests; all notify one SNS topic."""

from __future__ import annotations

from harness.deploy.context import ALARM_TOPIC, ALB, CLUSTER, DATABASE, RenderContext, service_id
from harness.deploy.template import Json, get_att, ref

PERIOD_SECONDS = 60
EVALUATION_PERIODS = 5


def add_alarms(ctx: RenderContext) -> None:
    t, alarms, names = ctx.template, ctx.topology.deploy.alarms, ctx.names
    t.add(
        ALARM_TOPIC,
        "AWS::SNS::Topic",
        {"TopicName": f"{names.app_stack}-alarms", "Tags": ctx.tags("observability")},
    )
    if alarms.email:
        t.add(
            "AlarmEmailSubscription",
            "AWS::SNS::Subscription",
            {"TopicArn": ref(ALARM_TOPIC), "Protocol": "email", "Endpoint": alarms.email},
        )
    if ctx.with_services:
        for name in ctx.topology.services:
            _threshold_alarm(
                ctx,
                f"{service_id(name)}CpuHigh",
                f"{names.service(name)} CPU > {alarms.cpu_percent:g}%",
                "AWS/ECS",
                "CPUUtilization",
                [("ClusterName", ref(CLUSTER)), ("ServiceName", get_att(service_id(name), "Name"))],
                alarms.cpu_percent,
            )
    _threshold_alarm(
        ctx,
        "DatabaseCpuHigh",
        f"{names.app_stack} database CPU > {alarms.cpu_percent:g}%",
        "AWS/RDS",
        "CPUUtilization",
        [("DBInstanceIdentifier", ref(DATABASE))],
        alarms.cpu_percent,
    )
    max_connections = ctx.topology.deploy.database.max_connections
    _threshold_alarm(
        ctx,
        "DatabaseConnectionsHigh",
        f"{names.app_stack} database connections > {alarms.rds_connections_percent:g}% of {max_connections}",
        "AWS/RDS",
        "DatabaseConnections",
        [("DBInstanceIdentifier", ref(DATABASE))],
        round(max_connections * alarms.rds_connections_percent / 100),
    )
    alb = [{"Name": "LoadBalancer", "Value": get_att(ALB, "LoadBalancerFullName")}]

    def count(metric_id: str, metric: str) -> Json:
        return {
            "Id": metric_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": alb},
                "Period": PERIOD_SECONDS,
                "Stat": "Sum",
            },
        }

    t.add(
        "Http5xxRateHigh",
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{names.app_stack}-http-5xx-rate",
            "AlarmDescription": f"{names.app_stack}: 5xx responses > {alarms.http_5xx_percent:g}% of requests",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": alarms.http_5xx_percent,
            "EvaluationPeriods": EVALUATION_PERIODS,
            "DatapointsToAlarm": 3,
            "TreatMissingData": "notBreaching",
            "Metrics": [
                count("target5xx", "HTTPCode_Target_5XX_Count"),
                count("elb5xx", "HTTPCode_ELB_5XX_Count"),
                count("requests", "RequestCount"),
                {
                    "Id": "rate",
                    "Label": "5xx % of requests",
                    "ReturnData": True,
                    "Expression": "IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)",
                },
            ],
            "AlarmActions": [ref(ALARM_TOPIC)],
            "OKActions": [ref(ALARM_TOPIC)],
        },
    )


def _threshold_alarm(
    ctx: RenderContext,
    logical_id: str,
    description: str,
    namespace: str,
    metric: str,
    dimensions: list[tuple[str, Json]],
    threshold: float,
) -> None:
    ctx.template.add(
        logical_id,
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
            "Statistic": "Average",
            "Period": PERIOD_SECONDS,
            "EvaluationPeriods": EVALUATION_PERIODS,
            "DatapointsToAlarm": 3,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [ref(ALARM_TOPIC)],
            "OKActions": [ref(ALARM_TOPIC)],
        },
    )
