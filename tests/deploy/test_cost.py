"""`harness cost`: the price table applied to a hand-checked fixture, and to the rendered staging stacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.deploy.costs import by_service, template_costs
from harness.deploy.prices import ME_SOUTH_1
from harness.errors import DeployError

ROOT = Path(__file__).resolve().parents[2]

# A small template, priced by hand with harness/deploy/prices.py (me-south-1, 730 h a month):
FIXTURE = {
    "Resources": {
        "ApiService": {"Type": "AWS::ECS::Service",
                       "Properties": {"DesiredCount": 2, "TaskDefinition": {"Ref": "ApiTask"}}},
        "ApiTask": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Cpu": "512", "Memory": "1024"}},
        "Database": {"Type": "AWS::RDS::DBInstance",
                     "Properties": {"DBInstanceClass": "db.t4g.medium", "MultiAZ": True, "AllocatedStorage": "20",
                                    "ManageMasterUserPassword": True}},
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {}},
    }
}  # fmt: skip
EXPECTED = {
    # 2 x (0.5 vCPU x 0.04456 + 1 GB x 0.00489) x 730 = 2 x 0.02717 x 730 = 39.6682
    "ECS Fargate (api)": 39.67,
    # 2 AZ x (0.072 x 730 + 20 GB x 0.127) = 2 x (52.56 + 2.54) = 110.20
    "RDS PostgreSQL": 110.20,
    # 0.050 x 730 + 20 GB x 0.050 = 36.50 + 1.00
    "NAT Gateway": 37.50,
    # the template's secret + the RDS-managed master secret: 2 x 0.40
    "Secrets Manager": 0.80,
}


def test_the_fixture_costs_what_was_computed_by_hand() -> None:
    services = {
        name: round(usd, 2) for name, usd in by_service(template_costs(FIXTURE, prices=ME_SOUTH_1)).items()
    }
    assert services == EXPECTED
    assert round(sum(services.values()), 2) == 188.17


def test_an_unknown_instance_class_is_refused_with_where_to_add_it() -> None:
    template = {
        "Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"DBInstanceClass": "db.x9.huge"}}}
    }
    with pytest.raises(DeployError, match=r"Db: no price for RDS instance class db.x9.huge") as caught:
        template_costs(template, prices=ME_SOUTH_1)
    assert "harness/deploy/prices.py" in str(caught.value.hint)


def test_harness_cost_prices_the_staging_stacks_beside_the_architecture_table() -> None:
    argv = [sys.executable, "-m", "harness.cli", "--topology", str(ROOT / "topology.toml")]
    proc = subprocess.run(
        [*argv, "cost", "--env", "staging", "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    services = {row["service"]: row["usd_month"] for row in report["services"]}
    assert round(sum(services.values()), 2) == pytest.approx(report["total_usd_month"], abs=0.02)
    assert services["ECS Fargate (backend)"] == 39.67  # desired_count 2 of 0.5 vCPU / 1 GB, as in the fixture
    assert services["ECS Fargate (worker)"] == 19.83
    assert report["region"] == "me-south-1" and report["price_table"]["verified"] is False
    proc = subprocess.run([*argv, "cost", "--env", "staging"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ESTIMATES" in proc.stdout and "~$223" in proc.stdout and "Vercel (frontend)" in proc.stdout
