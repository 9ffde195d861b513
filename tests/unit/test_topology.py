"""The topology loads into a frozen model; every malformed case names the file, the dotted key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.errors import TopologyError
from harness.topology import load_topology, resolve_references

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology.toml"


def test_defaults_are_the_seed_architecture() -> None:
    t = load_topology(TOPOLOGY)
    assert t.env == "local"
    assert t.region == "me-south-1"
    assert t.postgres.version == 16
    assert set(t.postgres.roles) == {"app_user", "app_migrator"}
    assert t.postgres.owner_role == "app_migrator"
    assert t.postgres.roles["app_user"].bypass_rls is False
    assert [ns.pattern for ns in t.redis.namespaces] == [
        "ai:quota:*",
        "ai:limit:*",
        "ai:catalog:*",
        "rl:*",
        "celery:*",
    ]
    assert t.s3.bucket == "saas-media-local-000000000000"
    assert (t.s3.versioning, t.s3.block_public_access, t.s3.encryption) == (True, True, "AES256")
    assert [(r.transition_days, r.storage_class) for r in t.s3.lifecycle] == [(90, "STANDARD_IA")]
    policy = t.cognito.password_policy
    assert policy.minimum_length == 12
    assert policy.require_symbols and policy.require_numbers and policy.require_uppercase
    assert set(t.cognito.groups) == {"Owner", "Admin", "Member"}
    assert t.cognito.app_client.generate_secret
    assert t.ports() == {"postgres": 5432, "redis": 6379, "aws": 4566, "backend": 8000, "console": 8025}
    assert t.services["backend"].health_path == "/api/v1/health"


def test_environment_overrides_are_merged() -> None:
    staging = load_topology(TOPOLOGY, env="staging")
    assert staging.s3.bucket == "saas-media-staging-111122223333"
    assert staging.cognito.user_pool_name == "saas-staging"
    assert staging.postgres.port == 5432  # untouched defaults survive the merge


def test_model_is_frozen() -> None:
    t = load_topology(TOPOLOGY)
    with pytest.raises(ValidationError):
        t.postgres.port = 1  # type: ignore[misc]


def test_redis_users_are_derived_from_namespaces() -> None:
    t = load_topology(TOPOLOGY)
    assert "rl:" in t.redis.users["backend"]
    assert "rl:" not in t.redis.users["worker"]
    ns = t.redis.namespace_of("ai:quota:t1:2026-11")
    assert ns is not None and ns.prefix == "ai:quota:"
    assert t.redis.namespace_of("sessions:abc") is None


def test_references_resolve_and_unknown_ones_fail() -> None:
    assert resolve_references("x-${s3.bucket}", {"s3.bucket": "b"}) == "x-b"
    with pytest.raises(TopologyError, match=r"\$\{cognito.client_id\}"):
        resolve_references("${cognito.client_id}", {})


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = TOPOLOGY.read_text()
    assert old in text, f"test fixture out of date: {old!r} not in topology.toml"
    path = tmp_path / "topology.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "expected", "line_needle"),
    [
        ("minimum_length = 12", 'minimum_length = "twelve"', "cognito.password_policy.minimum_length",
         "valid integer", "minimum_length"),
        ("versioning = true", "versionning = true", "s3.versionning", "unknown key", "versionning"),
        ('redis_user = "worker"', 'redis_user = "wrker"', "services.worker.redis_user",
         "'wrker' is not a Redis user", 'redis_user = "wrker"'),
        ("port = 8000", "port = 5432", "services.backend.port", "also used by postgres", None),
        ('region = "me-south-1"', 'region = "Bahrain"', "project.region", "pattern", "region ="),
        ('bucket = "{project}-media-{env}-{account_id}"', 'bucket = "Media_Bucket"', "s3.bucket",
         "not a valid S3 bucket name", "Media_Bucket"),
        ('sender = "no-reply@yourdomain.com"', 'sender = "no-reply@other.com"', "ses", "must be an address of",
         None),
        ("version = 16", "version = 15", "postgres.version", "16", "version = 15"),
        ("owns_schema = false\nbypass_rls = false", "owns_schema = false\nbypass_rls = true", "postgres.roles",
         "must not bypass RLS", None),
        ('mfa = "OPTIONAL"', 'mfa = "SOMETIMES"', "cognito.mfa", "'OFF', 'OPTIONAL' or 'ON'", "SOMETIMES"),
        ('value = "${cognito.client_id}"', 'value = "${cognito.clientid}"', "parameters[4].value",
         "unknown reference ${cognito.clientid}", None),
        ('health_path = "/api/v1/health"\n', "", "services.backend", "needs `port` and `health_path`", None),
    ],
)  # fmt: skip
def test_malformed_topology_names_file_key_and_expectation(
    tmp_path: Path, old: str, new: str, key: str, expected: str, line_needle: str | None
) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message
    if line_needle is not None:
        assert f"{path}:{_line_of(path, line_needle)}: " in message


def test_override_errors_name_the_environment_table(tmp_path: Path) -> None:
    path = _broken(tmp_path, '[environments.staging]\nproject.account_id = "111122223333"',
                   '[environments.staging]\nproject.account_id = "1111"')  # fmt: skip
    with pytest.raises(TopologyError) as info:
        load_topology(path, env="staging")
    assert "environments.staging.project.account_id" in str(info.value)
    assert f"{path}:{_line_of(path, '1111')}:" in str(info.value)
    load_topology(path, env="local")  # the broken override does not affect other environments


def test_unknown_environment_lists_the_declared_ones() -> None:
    with pytest.raises(TopologyError, match=r"environments.qa: no such environment \(declared: .*staging"):
        load_topology(TOPOLOGY, env="qa")


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _broken(tmp_path, "[redis]", "[redis")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert re.search(rf"{re.escape(str(path))}: not valid TOML: .*line \d+", str(info.value))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read the topology file"):
        load_topology(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("port = 5432", "port = true", "postgres.port"),
        ("port = 5432", 'port = "5432"', "postgres.port"),
        ("port = 5432", "port = 5432.0", "postgres.port"),
        ("versioning = true", "versioning = 1", "s3.versioning"),
        ("versioning = true", 'versioning = "yes"', "s3.versioning"),
        ("transition_days = 90", "transition_days = true", "s3.lifecycle[0].transition_days"),
        ("version = 16", 'version = "16"', "postgres.version"),
    ],
)
def test_types_are_strict(tmp_path: Path, old: str, new: str, key: str) -> None:
    """A boolean is not an integer and a string is not a number: TOML has real types, a mismatch is a typo."""
    path = _broken(tmp_path, old, new)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert f"{path}:{_line_of(path, new)}: {key}: " in str(info.value), str(info.value)


def test_arrays_still_load_as_tuples() -> None:
    t = load_topology(TOPOLOGY)
    assert isinstance(t.cognito.groups, tuple) and isinstance(t.app.seed, tuple)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("Media-bucket", "lowercase letters"),
        ("media_bucket", "lowercase letters"),
        ("-media", "begin and end"),
        ("media.", "begin and end"),
        ("media..bucket", "adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("xn--media", "'xn--'"),
        ("sthree-media", "'sthree-'"),
        ("sthree-configurator-x", "'sthree-'"),
        ("amzn-s3-demo-media", "'amzn-s3-demo-'"),
        ("media-s3alias", "'-s3alias'"),
        ("media--ol-s3", "'--ol-s3'"),
        ("media.mrap", "'.mrap'"),
        ("media--x-s3", "'--x-s3'"),
        ("media--table-s3", "'--table-s3'"),
    ],
)
def test_bucket_names_follow_aws_rules(tmp_path: Path, name: str, rule: str) -> None:
    path = _broken(tmp_path, 'bucket = "{project}-media-{env}-{account_id}"', f'bucket = "{name}"')
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    message = str(info.value)
    assert "s3.bucket" in message and "not a valid S3 bucket name" in message and rule in message, message


@pytest.mark.parametrize("name", ["abc", "my.media-bucket-1", "1.2.3.4.5", "media-xn--a", "s3alias-media"])
def test_bucket_names_aws_accepts_load(tmp_path: Path, name: str) -> None:
    path = _broken(tmp_path, 'bucket = "{project}-media-{env}-{account_id}"', f'bucket = "{name}"')
    assert load_topology(path).s3.bucket == name


def test_worker_pool_and_concurrency_come_from_the_topology_and_only_for_celery(tmp_path: Path) -> None:
    from harness.topology import Service

    worker = Service(
        kind="celery", app="app.workers.celery_app", redis_user="worker", pool="threads", concurrency=3
    )
    assert worker.worker_pool_args() == ["--pool", "threads", "--concurrency", "3"]
    assert Service(kind="celery", app="a.b", redis_user="w").worker_pool_args() == ["--concurrency", "2"]
    with pytest.raises(ValueError, match="for a celery service"):
        Service(kind="asgi", app="a:b", port=8000, health_path="/h", redis_user="b", pool="threads")
    with pytest.raises(ValueError, match="prefork"):
        Service(kind="celery", app="a.b", redis_user="w", pool="gevent")


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('"lpush", "llen", "sadd"', '"lpush", "llen", "keys", "sadd"', "redis.acl.backend.commands",
         "'keys' may not be allowed to a component user: it lists key names of every namespace"),
        ('"lpush", "llen", "sadd"', '"lpush", "llen", "scan", "sadd"', "redis.acl.backend.commands",
         "keep an index key instead"),
        ('"lpush", "llen", "sadd"', '"lpush", "llen", "function|flush", "sadd"', "redis.acl.backend.commands",
         "functions are shared by every user"),
        ('"lpush", "llen", "sadd"', '"lpush", "llen", "@read", "sadd"', "redis.acl.backend.commands",
         "categories (@read) are not allowed"),
        ('"lpush", "llen", "sadd"', '"lpush", "llen", "lpush", "sadd"', "redis.acl.backend.commands",
         "'lpush' is listed twice"),
        ("[redis.acl.worker]", "[redis.acl.wrker]", "redis", "redis.acl.wrker: no namespace lists user 'wrker'"),
    ],
)  # fmt: skip
def test_redis_allow_lists_refuse_what_no_component_may_run(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert key in str(info.value) and expected in str(info.value)


def test_redis_command_rules_are_the_allow_list_on_both_tiers_and_in_elasticache() -> None:
    from harness.deploy.data import redis_access_string

    topology = load_topology(TOPOLOGY)
    rules = topology.redis.command_rules("backend")
    assert rules[0] == "-@all" and "+lpush" in rules and not any(r.startswith("+@") for r in rules)
    access = redis_access_string(topology.redis.users["backend"], rules)
    assert access.startswith("on ~ai:quota:* ") and access.endswith(" ".join(rules))
    # a user without an allow-list keeps the deny-list default
    assert topology.model_copy(
        update={"redis": topology.redis.model_copy(update={"acl": {}})}
    ).redis.command_rules("worker") == tuple(topology.redis.acl_commands.split())
