"""`[deploy]` of the topology: what only the AWS deployment needs (sizes, counts, thresholds, domain).

Every key is optional; the defaults are the MVP shape of aws-architecture.md. Read by harness/deploy only
(`Topology.deploy`); a reason to change of its own, apart from the local stack's tables in harness.topology.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.topology_model import TableModel


class DeployNetwork(TableModel):
    vpc_cidr: Annotated[str, Field(pattern=r"^\d+\.\d+\.0\.0/16$")] = "10.40.0.0/16"
    # One NAT gateway (MVP cost table); 2 for production puts one in each AZ.
    nat_gateways: Literal[1, 2] = 1


class DeployEcsService(TableModel):
    cpu: Literal[256, 512, 1024, 2048, 4096] = 512
    memory: Annotated[int, Field(ge=512, le=30720)] = 1024
    desired_count: Annotated[int, Field(ge=1)] = 1
    min_count: Annotated[int, Field(ge=1)] = 1
    max_count: Annotated[int, Field(ge=1)] = 2
    # Target-tracking on average CPU; None for no CPU scaling.
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] | None = None

    @model_validator(mode="after")
    def _counts(self) -> DeployEcsService:
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError("need min_count <= desired_count <= max_count")
        return self


class DeployBackend(DeployEcsService):
    desired_count: Annotated[int, Field(ge=1)] = 2
    min_count: Annotated[int, Field(ge=1)] = 2
    max_count: Annotated[int, Field(ge=1)] = 6
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] | None = 70


class DeployWorker(DeployEcsService):
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] | None = 70


class DeployDatabase(TableModel):
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.medium"
    # A current minor (cfn-lint flags deprecated ones); RDS applies later minors itself (auto minor upgrade).
    engine_version: Annotated[str, Field(pattern=r"^16\.\d+$")] = "16.15"
    multi_az: bool = True
    allocated_storage_gb: Annotated[int, Field(ge=20)] = 20
    max_allocated_storage_gb: Annotated[int, Field(ge=20)] = 100
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    # Set explicitly so the "connections > 80 %" alarm has an exact threshold (pool 10+5 per task is far below).
    max_connections: Annotated[int, Field(ge=20)] = 400
    deletion_protection: bool = True


class DeployCache(TableModel):
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.micro"
    engine_version: Annotated[str, Field(pattern=r"^7(\.\d+)?$")] = "7.1"
    num_cache_clusters: Annotated[int, Field(ge=2, le=6)] = 2


class DeployEdge(TableModel):
    # Public name of the API (CloudFront alias); None: api.<env>.<ses.domain>.
    api_domain: Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")] | None = None
    # Route 53 zone of the domain: certificates validate and DNS records are created automatically when set.
    hosted_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{4,32}$")] | None = None
    # Existing ACM certificates; None: the stacks request them (DNS validation).
    alb_certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:")] | None = None
    cloudfront_certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:us-east-1:")] | None = None
    waf_rate_limit_per_5_min: Annotated[int, Field(ge=100)] = 2000


class DeployAlarms(TableModel):
    cpu_percent: Annotated[float, Field(gt=0, le=100)] = 80
    rds_connections_percent: Annotated[float, Field(gt=0, le=100)] = 80
    http_5xx_percent: Annotated[float, Field(gt=0, le=100)] = 1
    email: str | None = None  # subscribed to the alarm topic when set


class Deploy(TableModel):
    """`[deploy]`: sizes, counts, thresholds and names of the AWS deployment (harness/deploy)."""

    # ECR repository of the one app image; None: <project>-backend.
    image_repository: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*$")] | None = None
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731] = 30
    network: DeployNetwork = DeployNetwork()
    backend: DeployBackend = DeployBackend()
    worker: DeployWorker = DeployWorker()
    database: DeployDatabase = DeployDatabase()
    cache: DeployCache = DeployCache()
    edge: DeployEdge = DeployEdge()
    alarms: DeployAlarms = DeployAlarms()

    def service(self, name: str) -> DeployEcsService:
        """The size of the ECS service `name` (a service with no table of its own is sized like the worker)."""
        return self.backend if name == "backend" else self.worker
