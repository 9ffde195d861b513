"""The Redis probe: one key (type, value, hash fields, TTL) or the keys matching a pattern.

Locally through the admin (default) user; on a deployed stack only when a Redis URL is given explicitly
(ElastiCache is in private subnets: a tunnel, or a runner inside the VPC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis


@dataclass(frozen=True)
class KeyState:
    key: str
    exists: bool
    type: str | None = None
    value: Any = None  # string value, list items, set/zset members
    fields: dict[str, str] = field(default_factory=dict)  # hash fields
    ttl: int | None = None  # seconds; -1 without expiry

    def outcome(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "exists": self.exists,
            "type": self.type,
            "value": self.value,
            "fields": dict(self.fields),
            "ttl": self.ttl,
        }


class RedisKeys:
    """Reads keys for probes, finds keys for cleanup."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: redis.Redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)

    def inspect(self, key: str) -> KeyState:
        client: Any = self.client  # redis-py's stubs type responses as bytes | str; we decode
        kind = str(client.type(key))
        if kind == "none":
            return KeyState(key, exists=False)
        ttl = int(client.ttl(key))
        value: Any = None
        fields: dict[str, str] = {}
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            fields = dict(client.hgetall(key))
            value = fields
        elif kind == "list":
            value = list(client.lrange(key, 0, 999))
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = [member for member, _ in client.zrange(key, 0, 999, withscores=True)]
        return KeyState(key, exists=True, type=kind, value=value, fields=fields, ttl=ttl)

    def scan(self, pattern: str, limit: int = 10_000) -> list[str]:
        keys: list[str] = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            keys.append(str(key))
            if len(keys) >= limit:
                break
        return sorted(keys)

    def describe(self, keys: list[str]) -> list[KeyState]:
        """Type and TTL of each key (no values), in one round trip."""
        pipe: Any = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
            pipe.ttl(key)
        answers = pipe.execute()
        found = []
        for i, key in enumerate(keys):
            kind, ttl = str(answers[2 * i]), int(answers[2 * i + 1])
            if kind != "none":
                found.append(KeyState(key, exists=True, type=kind, ttl=ttl))
        return found

    def delete_containing(self, fragments: list[str], prefixes: list[str]) -> int:
        """Delete keys under `prefixes` whose name contains one of `fragments` (a run's tenant ids, subs)."""
        doomed: set[str] = set()
        for prefix in prefixes:
            for fragment in fragments:
                doomed.update(self.scan(f"{_escape(prefix)}*{_escape(fragment)}*"))
        if doomed:
            self.client.delete(*sorted(doomed))
        return len(doomed)

    def close(self) -> None:
        self.client.close()


def _escape(text: str) -> str:
    """A literal for a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
