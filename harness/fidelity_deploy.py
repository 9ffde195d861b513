"""The fidelity ledger's rows for deploys: what `harness deploy --rehearse` (the AWS stand-in,
harness/deploy/standin) proves and what only AWS can. Part of `harness.fidelity.LEDGER` (docs/fidelity.md)."""

from __future__ import annotations

from harness.fidelity_types import Behaviour

DEPLOY_BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        "deploy.change-sets-and-rollback",
        "CloudFormation",
        "Change sets list each resource a template change adds, modifies or removes; executing one emits "
        "per-resource events; a failing resource rolls the stack back (UPDATE_ROLLBACK_COMPLETE keeps the previous "
        "template and outputs; a failed create is ROLLBACK_COMPLETE).",
        True,
        (
            "tests/deploy/test_deploy_moto.py::test_a_topology_change_produces_the_expected_change_set",
            "tests/deploy/test_deploy_moto.py::test_a_failing_resource_is_reported_and_the_previous_stack_kept",
        ),
        note="Reproduced by the AWS stand-in (moto plus the models it lacks; docs/deploying.md lists them). "
        "Resource types moto does not model are recorded, not created: their property names, types and "
        "GetAtt attributes are checked by cfn-lint against AWS's schemas, not by applying them.",
    ),
    Behaviour(
        "deploy.account-guard-rail",
        "STS",
        "GetCallerIdentity names the account the credentials belong to; the deploy refuses any but the "
        "environment's project.account_id.",
        True,
        (
            "tests/deploy/test_deploy_moto.py::test_production_is_refused_without_its_flag_and_with_the_wrong_account",
        ),
        note="The stand-in answers for the environment's own account id, so a rehearsal passes the same check.",
    ),
    Behaviour(
        "deploy.gate-scenarios",
        "Deploy",
        "After the rollout, the API answers /api/v1/health and the scenarios of the deployed target pass "
        "against the stack's outputs (Cognito pool and client, bucket, SES events queue).",
        True,
        (
            "tests/deploy/test_rehearsal.py::test_the_documented_rehearsal_passes_and_stops_what_it_started",
            "tests/deploy/test_rehearsal.py::test_a_release_whose_gate_passed_is_a_noop_on_rerun",
        ),
        note="A rehearsal runs the same gate code and the same scenarios on the deployed target path, but "
        "against a local app stack (same app code, the local emulator's Cognito/S3/SES, SES events relayed to "
        "an SQS queue) provisioned in place of the ECS tasks: it proves the gate and the app, not that the "
        "image runs on Fargate.",
    ),
    Behaviour(
        "deploy.ecs-runs-the-image",
        "ECS",
        "ECS pulls the release image from ECR; dbroles and migrate run in it against RDS and must exit 0; the "
        "services reach steady state under the rolling deployment and circuit breaker.",
        False,
        ("tests/deploy/test_deploy_moto.py::test_first_deploy_creates_the_stacks",),
        note="Not reproduced: the stand-in stops every task at once with exit 0 and reports running = desired; "
        "the placeholder image has no layers. The roles and migrations themselves are proven locally "
        "(tests/integration/test_rds_shaped_provisioning.py); the Dockerfile build only in CI and on AWS.",
    ),
    Behaviour(
        "deploy.edge-tls-dns",
        "CloudFront",
        "The API's name resolves to CloudFront; CloudFront (with the WAF web ACL) forwards over TLS to the ALB "
        "and a task; ACM certificates validate by DNS.",
        False,
        (
            "tests/deploy/test_release_gate.py::test_a_name_that_does_not_resolve_fails_the_health_check_at_once",
        ),
        note="Only AWS proves it. A rehearsal's health check goes straight to the local backend; the gate treats "
        "a DNS or TLS failure as permanent (fails at once, with the reason).",
    ),
    Behaviour(
        "deploy.iam-and-network",
        "IAM",
        "Task roles, security-group rules and VPC endpoints allow what the app needs and deny the rest.",
        False,
        ("tests/deploy/test_checklist.py::test_checklist_item_is_satisfied",),
        note="The templates are asserted rule by rule (tests/deploy/test_checklist.py), but neither the stand-in "
        "nor the local stack enforces IAM or network rules (see s3.header-signed-requests): only AWS does.",
    ),
)
