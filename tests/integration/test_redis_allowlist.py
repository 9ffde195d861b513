"""Redis ACLs are allow-lists: every command of every category, asked for every component user, is allowed
exactly when the user's [redis.acl.<user>] list in topology.toml names it — and what Redis refuses a
component is seen by the scenario audits (its ACL LOG).

The enumeration uses `ACL DRYRUN` (Redis 7 / Valkey: the permission check without running the command), so
FLUSHALL and its kind are asked about, never run; tests/integration/test_stack_shape.py runs the keyless
destructive ones for real as each user.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from harness.scenarios import audits
from harness.scenarios.monitor import PROBE_CLIENT_NAME, RedisMonitor
from harness.testing import RunningStack
from harness.topology_redis import REDIS_NEVER_ALLOWED

pytestmark = pytest.mark.integration


def _raw(client: redis.Redis, *args: str) -> Any:
    """A command's raw reply (redis-py's parsers do not know every reply shape of COMMAND on Valkey)."""
    connection = client.connection_pool.get_connection()
    try:
        connection.send_command(*args)
        try:
            return connection.read_response()
        except redis.ResponseError as exc:
            return exc
    finally:
        client.connection_pool.release(connection)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def admin(stack: RunningStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_admin_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def every_command(admin: redis.Redis) -> dict[str, tuple[int, tuple[str, ...]]]:
    """name (`container|sub` for a subcommand) -> (arity, ACL categories), for every command the server has."""
    found: dict[str, tuple[int, tuple[str, ...]]] = {}
    for entry in _raw(admin, "COMMAND"):
        name, arity, categories = _text(entry[0]), int(entry[1]), tuple(_text(c) for c in entry[6])
        subcommands = entry[9] if len(entry) > 9 else []
        if subcommands:
            for sub in subcommands:
                found[_text(sub[0])] = (int(sub[1]), tuple(_text(c) for c in sub[6]))
        else:
            found[name] = (arity, categories)
    return found


def _allowed(
    admin: redis.Redis, user: str, commands: dict[str, tuple[int, tuple[str, ...]]], key: str
) -> set[str]:
    """The commands `user` may run, asked with ACL DRYRUN, every key argument inside its own namespace."""
    allowed = set()
    for name, (arity, _) in commands.items():
        parts = name.split("|")
        args = [*parts, *[key] * max(0, abs(arity) - len(parts))]
        answer = _raw(admin, "ACL", "DRYRUN", user, *args)
        if _text(answer) == "OK":
            allowed.add(name)
        else:
            assert "no permissions to run" in _text(answer), f"ACL DRYRUN {user} {name}: {answer}"
    return allowed


@pytest.fixture(scope="module")
def always_allowed(admin: redis.Redis, every_command: dict[str, tuple[int, tuple[str, ...]]]) -> set[str]:
    """What Redis lets any authenticated user run, whatever its rules (AUTH, HELLO, QUIT, RESET): asked for
    a user with no command at all."""
    user = f"acl-probe-nothing-{uuid.uuid4().hex[:8]}"
    admin.execute_command("ACL", "SETUSER", user, "on", f">{secrets.token_hex(16)}", "~x:*", "-@all")
    try:
        return _allowed(admin, user, every_command, "x:probe")
    finally:
        admin.execute_command("ACL", "DELUSER", user)


def test_each_component_user_may_run_exactly_its_allow_list(
    stack: RunningStack,
    admin: redis.Redis,
    every_command: dict[str, tuple[int, tuple[str, ...]]],
    always_allowed: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    redis_topology = stack.topology.redis
    categories = sorted({c for _, cats in every_command.values() for c in cats})
    assert len(every_command) > 300 and len(categories) > 15  # the server's whole command table was read
    for user, prefixes in redis_topology.users.items():
        acl = redis_topology.acl.get(user)
        assert acl is not None, (
            f"component user {user!r} has no allow-list ([redis.acl.{user}] in topology.toml)"
        )
        allowed = _allowed(admin, user, every_command, f"{prefixes[0]}probe")
        assert allowed - always_allowed == set(acl.commands) - always_allowed, (
            f"{user}: allowed but not listed {sorted(allowed - always_allowed - set(acl.commands))}; "
            f"listed but refused {sorted(set(acl.commands) - allowed)}"
        )
        never = {n for n in allowed if n in REDIS_NEVER_ALLOWED or n.split("|")[0] in REDIS_NEVER_ALLOWED}
        assert never == set(), f"{user} may run {sorted(never)}"
        per_category = {
            cat: sum(1 for n in allowed if cat in every_command[n][1]) for cat in categories
        }  # fmt: skip
        with capsys.disabled():
            print(
                f"\nredis ACL {user}: {len(allowed)} of {len(every_command)} commands allowed"
                f" ({len(always_allowed)} always allowed: {' '.join(sorted(always_allowed))}); per category: "
                + ", ".join(f"{cat} {n}" for cat, n in per_category.items() if n)
            )


def test_every_category_is_refused_beyond_the_allow_list(
    stack: RunningStack,
    admin: redis.Redis,
    every_command: dict[str, tuple[int, tuple[str, ...]]],
    always_allowed: set[str],
) -> None:
    """Per ACL category, each component user is refused every command the category has that its list does
    not name (@dangerous, @admin, @keyspace's KEYS/SCAN/RANDOMKEY, @scripting's FUNCTION ... included)."""
    redis_topology = stack.topology.redis
    categories = {c for _, cats in every_command.values() for c in cats}
    for user, prefixes in redis_topology.users.items():
        listed = set(redis_topology.acl[user].commands) | always_allowed
        for category in sorted(categories):
            members = {
                n: spec for n, spec in every_command.items() if category in spec[1] and n not in listed
            }
            allowed = _allowed(admin, user, members, f"{prefixes[0]}probe")
            assert allowed == set(), f"{user} may run {sorted(allowed)} of {category}"


def test_what_redis_refuses_a_component_is_an_audit_finding(stack: RunningStack, admin: redis.Redis) -> None:
    """A refusal lands in the ACL LOG; `RedisMonitor.refusals` reads it back for the users asked about, since
    the run began, leaving out clients named PROBE_CLIENT_NAME (tests that are refused on purpose)."""
    user, password = f"planted-{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    admin.execute_command(
        "ACL",
        "SETUSER",
        user,
        "on",
        f">{password}",
        "~planted:*",
        "-@all",
        "+ping",
        "+client|setname",
        "+get",
    )
    monitor = RedisMonitor(stack.redis_admin_url)
    since = datetime.now(UTC)
    try:
        url = f"redis://{user}:{password}@{stack.redis.host}:{stack.redis.port}/0"
        # the ACL LOG merges equal refusals (user, reason, object), so the probe is refused other things
        for name, command, key in (
            (None, "KEYS", "not-planted:x"),
            (PROBE_CLIENT_NAME, "RANDOMKEY", "probe:x"),
        ):
            client = redis.Redis.from_url(url, client_name=name)
            try:
                assert client.ping()
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.execute_command(command, *(["*"] if command == "KEYS" else []))
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.get(key)
            finally:
                client.close()
        findings = audits.audit_refusals(monitor.refusals([user], since))
        assert {f.offending for f in findings} == {f"{user}: command keys", f"{user}: key not-planted:x"}
        command = next(f for f in findings if f.offending.endswith("keys"))
        assert f"add 'keys' to redis.acl.{user}.commands" in command.detail
        assert monitor.refusals([user], datetime.now(UTC).replace(year=2100)) == []  # nothing after `since`
        assert monitor.refusals(["backend-of-another-stack"], since) == []
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        monitor.close()
