"""Every AWS name the deployment uses, derived from the topology in one place (nothing else builds names)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.topology import Topology

# CloudFront only accepts WAF web ACLs and certificates from us-east-1: they live in a small "edge" stack there.
EDGE_REGION = "us-east-1"
# The AWS-managed CloudFront origin-facing prefix list (the ALB accepts 443 from CloudFront only).
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
# The one-off tasks of a rollout, in the order they run (each is a task definition of the app stack).
DB_ROLES_TASK = "dbroles"
MIGRATE_TASK = "migrate"


@dataclass(frozen=True)
class DeployNames:
    """Names of one environment's stacks and resources (`DeployNames.of(topology)`)."""

    project: str
    env: str
    region: str
    account_id: str
    app_stack: str
    edge_stack: str
    base_stack: str
    artifacts_bucket: str
    cluster: str
    repository: str
    api_domain: str
    origin_domain: str
    log_group_prefix: str
    db_master_user: str

    @classmethod
    def of(cls, topology: Topology) -> DeployNames:
        project, env = topology.project.name, topology.env
        api_domain = topology.deploy.edge.api_domain or f"api.{env}.{topology.ses.domain}"
        return cls(
            project=project,
            env=env,
            region=topology.region,
            account_id=topology.project.account_id,
            app_stack=f"{project}-{env}",
            edge_stack=f"{project}-{env}-edge",
            base_stack=f"{project}-{env}-base",
            artifacts_bucket=f"{project}-{env}-deploy-{topology.project.account_id}-{topology.region}",
            cluster=f"{project}-{env}",
            repository=topology.deploy.image_repository or f"{project}-backend",
            api_domain=api_domain,
            # CloudFront reaches the ALB under a name its certificate covers (never the raw ALB DNS name).
            origin_domain=f"origin.{api_domain}",
            log_group_prefix=f"/ecs/{project}-{env}",
            db_master_user=f"{project.replace('-', '_')}_admin",
        )

    def service(self, name: str) -> str:
        return f"{self.project}-{self.env}-{name}"

    def task_family(self, name: str) -> str:
        return f"{self.project}-{self.env}-{name}"

    def log_group(self, name: str) -> str:
        return f"{self.log_group_prefix}/{name}"

    def role(self, purpose: str) -> str:
        return f"{self.project}-{self.env}-{purpose}"

    def role_password_secret(self, role: str) -> str:
        return f"{self.project}/{self.env}/postgres/{role}"

    def redis_password_secret(self, user: str) -> str:
        return f"{self.project}/{self.env}/redis/{user}"

    def redis_user_id(self, user: str) -> str:
        return f"{self.project}-{self.env}-{user}".lower()
