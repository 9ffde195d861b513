"""Pure parts of `harness snapshot`: the Redis copy's format, names, the topology digest per section."""

from __future__ import annotations

import pytest

from harness.devloop.snapshot_files import RedisEntry, decode_redis, encode_redis
from harness.devloop.snapshots import check_name, topology_digest, topology_digests
from harness.errors import HarnessError
from harness.topology import find_topology_file, load_topology


def test_redis_entries_round_trip_and_truncation_is_refused() -> None:
    entries = [
        RedisEntry(0, b"ai:limit:x", 0, b"\x00\x01dump"),
        RedisEntry(3, b"k" * 300, 1234, b"v" * 70000),
    ]
    data = encode_redis(entries)
    assert decode_redis(data) == entries
    with pytest.raises(HarnessError, match="truncated"):
        decode_redis(data[:-5])
    with pytest.raises(HarnessError, match="magic"):
        decode_redis(b"nope" + data)


@pytest.mark.parametrize("name", ["", "Bad", "a b", "x" * 41, "-lead", "../up"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(HarnessError, match="not valid"):
        check_name(name)


def test_digest_changes_with_the_data_shape_not_the_ports() -> None:
    topology = load_topology(find_topology_file())
    base = topology_digests(topology)
    ports = topology.model_copy(update={"postgres": topology.postgres.model_copy(update={"port": 15432})})
    assert topology_digests(ports) == base
    pool = topology.model_copy(
        update={"cognito": topology.cognito.model_copy(update={"user_pool_name": "other"})}
    )
    changed = topology_digests(pool)
    assert [k for k in base if base[k] != changed[k]] == ["cognito"]
    assert topology_digest(changed) != topology_digest(base)
