"""Redis ACL users: one per component, limited to its namespaces; the default user needs a password.

This mirrors ElastiCache RBAC (a user group with the default user locked behind a password and one user per
application component). Idempotent: a user is rewritten only when `ACL GETUSER` differs from the topology.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import redis

from harness.connections import RedisConnection
from harness.errors import ProvisionError
from harness.topology import Topology


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    return value


def _cmd(client: redis.Redis, *args: str) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def admin_client(conn: RedisConnection) -> redis.Redis:
    """A client as the default user: with the harness's password, or without one before provisioning."""
    for password in (conn.password, None):
        client = redis.Redis(host=conn.host, port=conn.port, password=password, socket_timeout=5)
        try:
            client.ping()
            return client
        except (redis.AuthenticationError, redis.ResponseError):
            client.close()
    raise ProvisionError(
        f"redis: the default user on {conn.endpoint} refuses the harness's password",
        hint="the state dir's secrets do not match this server; `harness reset` starts over",
    )


def _getuser(client: redis.Redis, user: str) -> dict[str, Any] | None:
    raw = _cmd(client, "ACL", "GETUSER", user)
    if raw is None:
        return None
    items = _text(raw)
    if isinstance(items, dict):
        return {str(k): v for k, v in items.items()}
    return {str(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _rules(prefixes: tuple[str, ...], commands: tuple[str, ...]) -> tuple[set[str], set[str], set[str]]:
    keys = {f"~{p}*" for p in prefixes}
    channels = {f"&{p}*" for p in prefixes}
    return keys, channels, set(commands)


def _matches(
    current: dict[str, Any], password: str, keys: set[str], channels: set[str], cmds: set[str]
) -> bool:
    flags = set(current.get("flags", []))
    if "on" not in flags or "nopass" in flags:
        return False
    if current.get("passwords", []) != [hashlib.sha256(password.encode()).hexdigest()]:
        return False
    if set(str(current.get("keys", "")).split()) != keys:
        return False
    if set(str(current.get("channels", "")).split()) != channels:
        return False
    return set(str(current.get("commands", "")).split()) == cmds


def provision_redis(
    topology: Topology, conn: RedisConnection, user_password: Callable[[str], str]
) -> list[str]:
    changes: list[str] = []
    client = admin_client(conn)
    try:
        for user, prefixes in topology.redis.users.items():
            password = user_password(user)
            rules = topology.redis.command_rules(user)
            keys, channels, cmds = _rules(prefixes, rules)
            current = _getuser(client, user)
            if current is not None and _matches(current, password, keys, channels, cmds):
                continue
            try:
                _cmd(
                    client, "ACL", "SETUSER", user, "reset", "on", f">{password}", *sorted(keys),
                    *sorted(channels), *rules,
                )  # fmt: skip
            except redis.ResponseError as exc:
                raise ProvisionError(
                    f"redis: the server refused the command rules of ACL user {user}: {exc}",
                    hint=f"check redis.acl.{user}.commands in topology.toml (COMMAND LIST names every command)",
                ) from exc
            changes.append(
                f"redis: {'created' if current is None else 'updated'} ACL user {user} ({' '.join(prefixes)})"
            )
        # Last, because it changes how we authenticate: the default user keeps full rights but needs a password.
        default = _getuser(client, "default")
        everything = ({"~*"}, {"&*"}, {"+@all"})
        if default is None or not _matches(default, conn.password, *everything):
            _cmd(client, "ACL", "SETUSER", "default", "reset", "on", f">{conn.password}", "~*", "&*", "+@all")
            changes.append("redis: default user now requires a password")
        if changes:
            try:
                _cmd(client, "ACL", "SAVE")
            except redis.ResponseError as exc:
                # A server without an aclfile (a plain redis:7 container) keeps users in memory only.
                if "aclfile" not in str(exc).lower():
                    raise
    except redis.RedisError as exc:
        raise ProvisionError(f"redis: provisioning ACL users on {conn.endpoint} failed: {exc}") from exc
    finally:
        client.close()
    return changes
