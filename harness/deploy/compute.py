"""ECR, the ECS cluster, one image with an entrypoint per service, the services (rolling 100/200 behind the
ALB, CPU target tracking), the one-off tasks of a rollout, the ALB with its HTTPS listener, and least-privilege
IAM roles (the execution role reads exactly the secrets and parameters a task is given)."""

from __future__ import annotations

from harness.deploy.context import (
    ALB,
    ALB_CERTIFICATE,
    APP_TASK_ROLE,
    CLUSTER,
    CONFIGURATION_SET,
    DATABASE,
    EMAIL_IDENTITY,
    EXECUTION_ROLE,
    HTTPS_LISTENER,
    MEDIA_BUCKET,
    ONE_OFF_TASK_ROLE,
    P_RELEASE_TAG,
    P_SERVICE_TAG,
    SG_ALB,
    SG_ECS,
    TARGET_GROUP,
    USER_POOL,
    VPC,
    RenderContext,
    log_group_id,
    role_password_id,
    service_id,
    subnets,
    task_definition_id,
)
from harness.deploy.identity import EnvSource, env_sources
from harness.deploy.naming import DB_ROLES_TASK, MIGRATE_TASK
from harness.deploy.template import NO_VALUE, Json, get_att, join, ref, sub
from harness.topology import Service

ONE_OFF_CPU, ONE_OFF_MEMORY = 256, 512
# ELB's TLS 1.3 policy that still accepts TLS 1.2 (the architecture asks for TLS 1.2+ only).
ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_CHECK_GRACE_SECONDS = 60


def add_compute(ctx: RenderContext) -> None:
    t, names = ctx.template, ctx.names
    t.add(
        CLUSTER,
        "AWS::ECS::Cluster",
        {
            "ClusterName": names.cluster,
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
            "Tags": ctx.tags("compute"),
        },
    )
    for name in [*ctx.topology.services, DB_ROLES_TASK, MIGRATE_TASK]:
        t.add(
            log_group_id(name),
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": names.log_group(name),
                "RetentionInDays": ctx.topology.deploy.log_retention_days,
                "Tags": ctx.tags("observability"),
            },
        )
    _add_roles(ctx)
    _add_load_balancer(ctx)
    for name, service in ctx.topology.services.items():
        _add_task_definition(
            ctx, name, _service_command(service), _service_sources(ctx, name), service=service
        )
    _add_one_off_tasks(ctx)
    if ctx.with_services:
        for name, service in ctx.topology.services.items():
            _add_service(ctx, name, service)


def migrator_env_keys(ctx: RenderContext) -> set[str]:
    """Env keys whose secret holds the schema owner's credentials: never given to a long-running service."""
    owner = ctx.topology.postgres.owner_role
    marker = f"${{postgres.roles.{owner}.url}}"
    return {s.env for s in ctx.topology.secrets if marker in (s.value or "")}


def _service_sources(ctx: RenderContext, name: str) -> list[EnvSource]:
    hidden = migrator_env_keys(ctx)
    return [s for s in env_sources(ctx, name) if s.env not in hidden]


def _service_command(service: Service) -> list[str]:
    if service.kind == "asgi":
        return [
            "uvicorn", service.app, "--host", "0.0.0.0", "--port", str(service.port),
            "--proxy-headers", "--forwarded-allow-ips", "*", "--no-access-log",
        ]  # fmt: skip
    return ["celery", "-A", service.app, "worker", "--loglevel", "INFO", "--hostname", "%h"]


def _health_check(service: Service) -> Json:
    if service.kind == "asgi":
        url = f"http://127.0.0.1:{service.port}{service.health_path}"
        probe = (
            f"import urllib.request,sys; sys.exit(urllib.request.urlopen('{url}', timeout=4).status != 200)"
        )
        command = ["CMD", "python", "-c", probe]
    else:
        # Celery inspect ping against this container's own worker (the architecture's "custom health check").
        command = ["CMD-SHELL", f"celery -A {service.app} inspect ping -d celery@$HOSTNAME --timeout 5"]
    return {"Command": command, "Interval": 30, "Timeout": 10, "Retries": 3, "StartPeriod": 30}


def _secrets(ctx: RenderContext, sources: list[EnvSource]) -> list[Json]:
    return [
        {
            "Name": s.env,
            "ValueFrom": ref(s.logical_id) if s.is_secret else ctx.parameter_arn(_param_name(ctx, s)),
        }
        for s in sources
    ]


def _param_name(ctx: RenderContext, source: EnvSource) -> str:
    return next(p.name for p in ctx.topology.parameters if p.env == source.env)


def _plain_env(ctx: RenderContext) -> list[Json]:
    """The non-secret part of the env contract (AWS credentials come from the task role, not from env)."""
    issuer = sub(f"https://cognito-idp.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{USER_POOL}}}")
    pairs: list[tuple[str, Json]] = [
        ("APP_ENV", ctx.names.env),
        ("AWS_REGION", ref("AWS::Region")),
        ("AWS_DEFAULT_REGION", ref("AWS::Region")),
        ("API_URL", f"https://{ctx.names.api_domain}"),
        ("COGNITO_ISSUER", issuer),
        (
            "COGNITO_JWKS_URL",
            sub(
                f"https://cognito-idp.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{USER_POOL}}}/.well-known/jwks.json"
            ),
        ),
        # Cognito has no per-group MFA: the app requires TOTP for these groups' roles (empty: none).
        ("COGNITO_MFA_REQUIRED_GROUPS", ",".join(ctx.topology.cognito.mfa_required_groups)),
    ]
    return [{"Name": k, "Value": v} for k, v in pairs]


def _add_task_definition(
    ctx: RenderContext,
    name: str,
    command: list[str],
    sources: list[EnvSource],
    *,
    service: Service | None = None,
    extra_secrets: list[Json] | None = None,
    extra_env: list[Json] | None = None,
) -> None:
    size = ctx.topology.deploy.service(name) if service is not None else None
    container: dict[str, Json] = {
        "Name": name,
        "Image": ctx.repository_image(P_SERVICE_TAG if service is not None else P_RELEASE_TAG),
        "Essential": True,
        "Command": command,
        "Environment": [*_plain_env(ctx), *(extra_env or [])],
        "Secrets": [*_secrets(ctx, sources), *(extra_secrets or [])],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref(log_group_id(name)),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": name,
            },
        },
    }
    if service is not None:
        container["HealthCheck"] = _health_check(service)
        if service.port is not None:
            container["PortMappings"] = [{"ContainerPort": service.port, "Protocol": "tcp"}]
    ctx.template.add(
        task_definition_id(name),
        "AWS::ECS::TaskDefinition",
        {
            "Family": ctx.names.task_family(name),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": str(size.cpu if size else ONE_OFF_CPU),
            "Memory": str(size.memory if size else ONE_OFF_MEMORY),
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": get_att(EXECUTION_ROLE, "Arn"),
            "TaskRoleArn": get_att(APP_TASK_ROLE if service is not None else ONE_OFF_TASK_ROLE, "Arn"),
            "ContainerDefinitions": [container],
            "Tags": ctx.tags("compute"),
        },
    )


def _add_one_off_tasks(ctx: RenderContext) -> None:
    """`dbroles` (RDS master credentials: creates/updates the app's roles) and `migrate` (as the schema owner)."""
    pg = ctx.topology.postgres
    master = sub(f"${{{DATABASE}.MasterUserSecret.SecretArn}}")
    role_secrets: list[Json] = [
        {
            "Name": f"ROLE_PASSWORD_{role.upper()}",
            "ValueFrom": sub(f"${{{role_password_id(role)}}}:password::"),
        }
        for role in pg.roles
    ]
    _add_task_definition(
        ctx,
        DB_ROLES_TASK,
        ["python", "-m", "harness.deploy.dbroles"],
        [],
        extra_secrets=[
            {"Name": "DB_MASTER_USER", "ValueFrom": join("", [master, ":username::"])},
            {"Name": "DB_MASTER_PASSWORD", "ValueFrom": join("", [master, ":password::"])},
            *role_secrets,
        ],
        extra_env=[
            {"Name": "DB_HOST", "Value": get_att(DATABASE, "Endpoint.Address")},
            {"Name": "DB_PORT", "Value": get_att(DATABASE, "Endpoint.Port")},
            {"Name": "HARNESS_ENV", "Value": ctx.names.env},
        ],
    )
    runtime = {s.env for s in ctx.topology.secrets if "${postgres.roles." in (s.value or "")}
    migrate_sources = [s for s in env_sources(ctx, None) if s.env in runtime]
    _add_task_definition(ctx, MIGRATE_TASK, list(ctx.topology.app.migrate), migrate_sources)


def _add_service(ctx: RenderContext, name: str, service: Service) -> None:
    t, size = ctx.template, ctx.topology.deploy.service(name)
    props: dict[str, Json] = {
        "ServiceName": ctx.names.service(name),
        "Cluster": ref(CLUSTER),
        "TaskDefinition": ref(task_definition_id(name)),
        "LaunchType": "FARGATE",
        "DesiredCount": size.desired_count,
        "DeploymentConfiguration": {
            "MinimumHealthyPercent": 100,
            "MaximumPercent": 200,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        },
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": subnets("App"),
                "SecurityGroups": [get_att(SG_ECS, "GroupId")],
            }
        },
        "PropagateTags": "SERVICE",
        "EnableECSManagedTags": True,
        "Tags": ctx.tags("compute"),
    }
    depends: list[str] = []
    if service.port is not None:
        props["LoadBalancers"] = [
            {"ContainerName": name, "ContainerPort": service.port, "TargetGroupArn": ref(TARGET_GROUP)}
        ]
        props["HealthCheckGracePeriodSeconds"] = HEALTH_CHECK_GRACE_SECONDS
        depends.append(HTTPS_LISTENER)
    t.add(service_id(name), "AWS::ECS::Service", props, depends_on=depends)
    target = f"{service_id(name)}ScalableTarget"
    t.add(
        target,
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "ecs",
            "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": sub(f"service/${{{CLUSTER}}}/${{{service_id(name)}.Name}}"),
            "MinCapacity": size.min_count,
            "MaxCapacity": size.max_count,
        },
    )
    if size.cpu_target_percent is not None:
        t.add(
            f"{service_id(name)}CpuScaling",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyName": f"{ctx.names.service(name)}-cpu-{size.cpu_target_percent}",
                "PolicyType": "TargetTrackingScaling",
                "ScalingTargetId": ref(target),
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": size.cpu_target_percent,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                    "ScaleOutCooldown": 60,
                    "ScaleInCooldown": 300,
                },
            },
        )


def _add_roles(ctx: RenderContext) -> None:
    t, names = ctx.template, ctx.names
    assume = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    secret_ids = sorted(
        {s.logical_id for s in env_sources(ctx, None) if s.is_secret} | _extra_secret_ids(ctx)
    )
    params = [ctx.parameter_arn(p.name) for p in ctx.topology.parameters]
    t.add(
        EXECUTION_ROLE,
        "AWS::IAM::Role",
        {
            "RoleName": names.role("task-execution-role"),
            "AssumeRolePolicyDocument": assume,
            "ManagedPolicyArns": [
                sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
            ],
            "Policies": [
                {
                    "PolicyName": "read-env-contract",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": [
                                    *(ref(i) for i in secret_ids),
                                    sub(f"${{{DATABASE}.MasterUserSecret.SecretArn}}"),
                                ],
                            },
                            {
                                "Effect": "Allow",
                                "Action": "ssm:GetParameters",
                                "Resource": params or NO_VALUE,
                            },
                        ],
                    },
                }
            ],
            "Tags": ctx.tags("compute"),
        },
    )
    bucket_arn = get_att(MEDIA_BUCKET, "Arn")
    t.add(
        APP_TASK_ROLE,
        "AWS::IAM::Role",
        {
            # The architecture's saas-backend-task-role, shared by backend and worker.
            "RoleName": names.role("backend-task-role"),
            "AssumeRolePolicyDocument": assume,
            "Policies": [
                {
                    "PolicyName": "app-runtime",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "MediaObjects",
                                "Effect": "Allow",
                                "Action": [
                                    "s3:GetObject",
                                    "s3:PutObject",
                                    "s3:DeleteObject",
                                    "s3:GetObjectVersion",
                                    "s3:DeleteObjectVersion",  # purge of a deleted tenant's prefix
                                ],
                                "Resource": sub(f"${{{MEDIA_BUCKET}.Arn}}/*"),
                            },
                            {
                                "Sid": "MediaList",
                                "Effect": "Allow",
                                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                                "Resource": bucket_arn,
                            },
                            {
                                "Sid": "SendEmail",
                                "Effect": "Allow",
                                "Action": ["ses:SendEmail", "ses:SendRawEmail"],
                                "Resource": [
                                    sub(
                                        "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
                                        f"${{{EMAIL_IDENTITY}}}"
                                    ),
                                    sub(
                                        "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:"
                                        f"configuration-set/${{{CONFIGURATION_SET}}}"
                                    ),
                                ],
                            },
                            {
                                "Sid": "UserPool",
                                "Effect": "Allow",
                                "Action": [
                                    "cognito-idp:AdminCreateUser",
                                    "cognito-idp:AdminGetUser",
                                    "cognito-idp:AdminUpdateUserAttributes",
                                    "cognito-idp:AdminAddUserToGroup",
                                    "cognito-idp:AdminRemoveUserFromGroup",
                                    "cognito-idp:AdminListGroupsForUser",
                                    "cognito-idp:AdminDisableUser",
                                    "cognito-idp:AdminInitiateAuth",
                                    "cognito-idp:ListUsers",
                                ],
                                "Resource": get_att(USER_POOL, "Arn"),
                            },
                        ],
                    },
                }
            ],
            "Tags": ctx.tags("compute"),
        },
    )
    # One-off tasks talk to Postgres only: their role has no AWS permission at all.
    t.add(
        ONE_OFF_TASK_ROLE,
        "AWS::IAM::Role",
        {
            "RoleName": names.role("one-off-task-role"),
            "AssumeRolePolicyDocument": assume,
            "Tags": ctx.tags("compute"),
        },
    )


def _extra_secret_ids(ctx: RenderContext) -> set[str]:
    ids = {role_password_id(role) for role in ctx.topology.postgres.roles}
    for name in ctx.topology.services:
        ids |= {s.logical_id for s in env_sources(ctx, name) if s.is_secret}
    return ids


def _add_load_balancer(ctx: RenderContext) -> None:
    t, names, edge = ctx.template, ctx.names, ctx.topology.deploy.edge
    backend = next(((n, s) for n, s in ctx.topology.services.items() if s.port is not None), None)
    port = backend[1].port if backend else 8000
    health = backend[1].health_path if backend else "/"
    t.add(
        ALB,
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Name": names.app_stack,
            "Type": "application",
            "Scheme": "internet-facing",
            "IpAddressType": "ipv4",
            "Subnets": subnets("Public"),
            "SecurityGroups": [get_att(SG_ALB, "GroupId")],
            "LoadBalancerAttributes": [
                {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                {"Key": "idle_timeout.timeout_seconds", "Value": "60"},
            ],
            "Tags": ctx.tags("edge"),
        },
    )
    t.add(
        TARGET_GROUP,
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Name": f"{names.app_stack}-backend"[:32],
            "VpcId": ref(VPC),
            "TargetType": "ip",
            "Protocol": "HTTP",
            "Port": port,
            "HealthCheckEnabled": True,
            "HealthCheckProtocol": "HTTP",
            "HealthCheckPath": health,
            "Matcher": {"HttpCode": "200"},
            "HealthCheckIntervalSeconds": 15,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
            "Tags": ctx.tags("edge"),
        },
    )
    if edge.alb_certificate_arn:
        certificate: Json = edge.alb_certificate_arn
    else:
        validation: Json = NO_VALUE
        if edge.hosted_zone_id:
            validation = [
                {"DomainName": d, "HostedZoneId": edge.hosted_zone_id}
                for d in (names.api_domain, names.origin_domain)
            ]
        t.add(
            ALB_CERTIFICATE,
            "AWS::CertificateManager::Certificate",
            {
                "DomainName": names.api_domain,
                "SubjectAlternativeNames": [names.origin_domain],
                "ValidationMethod": "DNS",
                "DomainValidationOptions": validation,
                "Tags": ctx.tags("edge"),
            },
        )
        certificate = ref(ALB_CERTIFICATE)
    t.add(
        HTTPS_LISTENER,
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "LoadBalancerArn": ref(ALB),
            "Port": 443,
            "Protocol": "HTTPS",
            "SslPolicy": ALB_SSL_POLICY,
            "Certificates": [{"CertificateArn": certificate}],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref(TARGET_GROUP)}],
        },
    )
