"""`harness.emulator.pickling`: what plain pickle refuses or gets wrong in moto's state, round-tripped."""

from __future__ import annotations

import collections
import pickle
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from harness.emulator import pickling


def roundtrip(obj: Any) -> Any:
    return pickling.loads(pickling.dumps(obj))


class Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.condition = threading.Condition()
        self.event = threading.Event()
        self.event.set()
        self.value = 42


def test_thread_primitives_come_back_fresh_and_usable() -> None:
    holder = Holder()
    holder.lock.acquire()  # a held lock must not come back held
    with pytest.raises(TypeError):
        pickle.dumps(holder)

    restored = roundtrip(holder)
    assert restored.value == 42
    assert restored.lock.acquire(blocking=False)
    with restored.rlock, restored.rlock:
        pass
    with restored.condition:
        restored.condition.notify_all()
    assert restored.event.is_set()


def test_private_keys_survive_as_pem() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TypeError):
        pickle.dumps(key)

    restored, public = roundtrip((key, key.public_key()))
    signature = restored.sign(b"payload", padding.PKCS1v15(), SHA256())
    public.verify(signature, b"payload", padding.PKCS1v15(), SHA256())
    assert restored.private_numbers() == key.private_numbers()
    curve_key = ec.generate_private_key(ec.SECP256R1())
    assert roundtrip(curve_key).private_numbers() == curve_key.private_numbers()


def test_joserfc_key_as_used_by_moto_cognito() -> None:
    from joserfc import jwk, jwt
    from moto.utilities.utils import load_resource

    key = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    token = jwt.encode({"alg": "RS256"}, {"sub": "u"}, key)
    assert jwt.decode(token, roundtrip(key)).claims == {"sub": "u"}


def test_defaultdict_with_a_lambda_factory() -> None:
    tags: collections.defaultdict[str, Any] = collections.defaultdict(lambda: collections.defaultdict(dict))
    tags["arn"]["Name"] = "x"
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(tags)

    restored = roundtrip(tags)
    assert restored["arn"]["Name"] == "x"
    restored["new"]["a"]["b"] = 1
    restored["other"]["c"] = {}
    assert restored["other"] is not restored["new"]
    assert isinstance(restored["third"], collections.defaultdict)


class VersionedStore(dict[str, Any]):
    """Like moto's S3 `_VersionedKeyStore`: stores a list per key, shows only the latest."""

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)[-1]

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, [*dict.get(self, key, []), value])

    def items(self) -> Any:
        return [(key, self[key]) for key in self.keys()]


def test_dict_subclass_keeps_its_raw_storage() -> None:
    store = VersionedStore()
    store["k"] = "v1"
    store["k"] = "v2"
    assert dict.__getitem__(pickle.loads(pickle.dumps(store)), "k") == ["v2"]  # the bug we avoid

    restored = roundtrip(store)
    assert type(restored) is VersionedStore
    assert dict.__getitem__(restored, "k") == ["v1", "v2"]


def test_moto_s3_versioned_key_store() -> None:
    from moto.s3.utils import _VersionedKeyStore

    store = _VersionedKeyStore()
    store["key"] = "version-1"
    store["key"] = "version-2"
    assert roundtrip(store).getlist("key") == ["version-1", "version-2"]


class ParameterDict(collections.defaultdict[str, list[str]]):
    """Like moto's SSM ParameterDict: a defaultdict subclass whose __init__ needs arguments."""

    def __init__(self, account_id: str, region: str) -> None:
        super().__init__(list)
        self.account_id = account_id
        self.region = region


def test_defaultdict_subclass_with_required_init_arguments() -> None:
    params = ParameterDict("000000000000", "me-south-1")
    params["/a"].append("v1")
    restored = roundtrip(params)
    assert (restored.account_id, restored.region, restored["/a"]) == ("000000000000", "me-south-1", ["v1"])
    assert restored["/b"] == []


class Node(dict[str, Any]):
    pass


def test_dict_subclass_cycles_resolve() -> None:
    node = Node()
    node["self"] = node
    node.parent = [node]  # type: ignore[attr-defined]
    restored = roundtrip(node)
    assert restored["self"] is restored
    assert restored.parent[0] is restored


class OwnReduce(dict[str, Any]):
    def __reduce__(self) -> Any:
        return (OwnReduce, (), None, None, iter([("marker", True)]))


def test_classes_with_their_own_reduce_are_respected() -> None:
    assert roundtrip(OwnReduce(a=1)) == {"marker": True}


class Registry:
    pass


REGISTRY = Registry()


def find_registry() -> Registry:
    return REGISTRY


def test_by_reference_pickles_a_name_not_a_copy() -> None:
    by_reference = pickling.ByReference((Registry,), lambda obj: (find_registry, ()))
    restored = pickling.loads(pickling.dumps({"r": REGISTRY, "again": REGISTRY}, by_reference))
    assert restored["r"] is REGISTRY
    assert restored["again"] is REGISTRY


def test_unpicklable_leftovers_still_raise() -> None:
    with pytest.raises((TypeError, pickle.PicklingError)):
        pickling.dumps({"thread": threading.Thread(target=print)})
