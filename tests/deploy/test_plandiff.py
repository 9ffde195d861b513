"""Property diffs of a plan: parameters filled in on both sides, secrets never shown."""

from __future__ import annotations

from harness.deploy.plandiff import PropertyChange, change_set_property_changes, resource_property_changes

OLD = {
    "Resources": {
        "Task": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "ContainerDefinitions": [{"Image": {"Fn::Sub": "${Repo}:${Tag}"}, "Cpu": 256}],
                "MasterUserPassword": "old-password-value",
                "Url": "postgresql://app:hunter2secret@db:5432/saas",
            },
        }
    }
}
NEW = {
    "Resources": {
        "Task": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "ContainerDefinitions": [{"Image": {"Fn::Sub": "${Repo}:${Tag}"}, "Cpu": 512}],
                "MasterUserPassword": "new-password-value",
                "Url": "postgresql://app:other5secret@db:5432/saas",
            },
        }
    }
}


def test_a_parameter_change_shows_where_it_lands_and_secrets_are_redacted() -> None:
    changes = resource_property_changes(
        OLD, {"Repo": "r", "Tag": "v1"}, NEW, {"Repo": "r", "Tag": "v2"}, "Task"
    )
    by_path = {c.path: c for c in changes}
    assert by_path["ContainerDefinitions[0].Image"] == PropertyChange(
        "ContainerDefinitions[0].Image", "r:v1", "r:v2"
    )
    assert by_path["ContainerDefinitions[0].Cpu"].line() == "ContainerDefinitions[0].Cpu: 256 → 512"
    assert by_path["MasterUserPassword"].line() == "MasterUserPassword: *** → ***"
    shown = " ".join(c.line() for c in changes)
    for secret in ("old-password-value", "new-password-value", "hunter2secret", "other5secret"):
        assert secret not in shown


def test_values_from_the_change_set_are_used_when_aws_gives_them() -> None:
    details = [{"Target": {"Attribute": "Properties", "Name": "DesiredCount", "Path": "/Properties/DesiredCount",
                           "BeforeValue": "2", "AfterValue": "3"}}]  # fmt: skip
    assert [c.line() for c in change_set_property_changes(details)] == ["Properties.DesiredCount: 2 → 3"]
