"""Pickling for in-memory emulator state that plain `pickle` refuses or gets wrong.

What moto 5.x backends hold that the standard pickler cannot handle, and what we do instead:

- thread primitives (`Lock`, `RLock`, `Condition`; `Event`/`Semaphore` contain them): a fresh, unlocked one
  is restored. Nothing can be waiting on them in a new process.
- `cryptography` keys and certificates (Cognito's RSA signing key, ACM certificates): PEM (PKCS#8 without
  encryption for private keys; the state file is local dev state, never a secret store).
- a `defaultdict` whose factory is a lambda or local function (SSM's tags): the factory is replaced by one
  that deep-copies what the original returned. Factories produce fresh empty defaults, so this is the same.
- `dict` subclasses that override `__setitem__`/`items` (S3's versioned key store keeps a list of versions
  per key but `items()` shows only the latest): the raw storage is pickled and put back with `dict`'s own
  methods, otherwise every non-latest object version would silently disappear on restore.

Anything else that fails (threads, sockets, open files) raises, and the caller decides what to leave out.
Unpickling runs code named in the file: only ever load state files this harness wrote.
"""

from __future__ import annotations

import collections
import copy
import io
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

PICKLE_PROTOCOL = 5

Reduction = tuple[Any, ...]

_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())
_PRIVATE_KEY_TYPES = PrivateKeyTypes.__args__  # type: ignore[attr-defined]
_PUBLIC_KEY_TYPES = PublicKeyTypes.__args__  # type: ignore[attr-defined]


class CopyingFactory:
    """A picklable `defaultdict` factory returning a deep copy of what the original factory returned."""

    def __init__(self, template: object) -> None:
        self.template = template

    def __call__(self) -> object:
        return copy.deepcopy(self.template)


def _new_lock() -> object:
    return threading.Lock()


def _new_rlock() -> object:
    return threading.RLock()


def _new_condition() -> threading.Condition:
    return threading.Condition()


def _load_private_key(pem: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem, password=None)


def _load_public_key(pem: bytes) -> PublicKeyTypes:
    return serialization.load_pem_public_key(pem)


def _new_mapping(cls: type[dict[Any, Any]], factory: Callable[[], object] | None) -> dict[Any, Any]:
    mapping = cls.__new__(cls)
    if factory is not None:
        mapping.default_factory = factory  # type: ignore[attr-defined]
    return mapping


def _set_mapping_state(mapping: dict[Any, Any], state: tuple[dict[Any, Any], object]) -> None:
    items, instance_state = state
    # dict's own update, so an overridden __setitem__ cannot reinterpret the raw values
    dict.update(mapping, items)
    if instance_state is None:
        return
    setstate = getattr(mapping, "__setstate__", None)
    if setstate is not None:
        setstate(instance_state)
    elif isinstance(instance_state, dict):
        vars(mapping).update(instance_state)


def _is_local_callable(func: object) -> bool:
    """Lambdas and functions defined inside functions cannot be pickled by reference."""
    return "<" in getattr(func, "__qualname__", "<")


def _has_own_reduce(cls: type) -> bool:
    reduce: Any = cls.__reduce__
    reduce_ex: Any = cls.__reduce_ex__
    return reduce not in (object.__reduce__, collections.defaultdict.__reduce__) or (
        reduce_ex is not object.__reduce_ex__
    )


def _reduce_lock(obj: object) -> Reduction:
    return (_new_lock, ())


def _reduce_rlock(obj: object) -> Reduction:
    return (_new_rlock, ())


def _reduce_condition(obj: object) -> Reduction:
    return (_new_condition, ())


def _reduce_private_key(obj: Any) -> Reduction:
    pem = obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (_load_private_key, (pem,))


def _reduce_public_key(obj: Any) -> Reduction:
    pem = obj.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (_load_public_key, (pem,))


def _reduce_certificate(obj: x509.Certificate) -> Reduction:
    return (x509.load_pem_x509_certificate, (obj.public_bytes(serialization.Encoding.PEM),))


def _reduce_csr(obj: x509.CertificateSigningRequest) -> Reduction:
    return (x509.load_pem_x509_csr, (obj.public_bytes(serialization.Encoding.PEM),))


def _reduce_mapping(obj: dict[Any, Any]) -> Reduction | Any:
    factory = getattr(obj, "default_factory", None)
    if factory is not None and _is_local_callable(factory):
        factory = CopyingFactory(factory())
    elif type(obj) is collections.defaultdict:
        return NotImplemented  # a plain defaultdict with an importable factory pickles fine
    # items and attributes travel as "state" so that cycles back to this mapping resolve through the memo
    state = (dict.copy(obj), obj.__getstate__())
    return (_new_mapping, (type(obj), factory), state, None, None, _set_mapping_state)


def _mapping_reducer(cls: type) -> Callable[[Any], Any] | None:
    if cls is dict or not issubclass(cls, dict) or issubclass(cls, collections.OrderedDict):
        return None
    if _has_own_reduce(cls):
        return None
    return _reduce_mapping


def _reducer_for(cls: type) -> Callable[[Any], Any] | None:
    if cls is _LOCK_TYPE:
        return _reduce_lock
    if cls is _RLOCK_TYPE:
        return _reduce_rlock
    if issubclass(cls, threading.Condition):
        return _reduce_condition
    if issubclass(cls, _PRIVATE_KEY_TYPES):
        return _reduce_private_key
    if issubclass(cls, _PUBLIC_KEY_TYPES):
        return _reduce_public_key
    if issubclass(cls, x509.Certificate):
        return _reduce_certificate
    if issubclass(cls, x509.CertificateSigningRequest):
        return _reduce_csr
    return _mapping_reducer(cls)


# type -> reducer (or None for "pickle normally"); types never change, so the answer is computed once
_REDUCER_CACHE: dict[type, Callable[[Any], Any] | None] = {}


@dataclass(frozen=True)
class ByReference:
    """Objects that must be pickled as references to live, process-wide objects rather than copied.

    For instances of `types`, `reduce(obj)` returns a reduction (whose callable finds the live object when
    unpickled) or `NotImplemented` to pickle that instance normally.
    """

    types: tuple[type, ...]
    reduce: Callable[[Any], Any]


class StatePickler(pickle.Pickler):
    """A `pickle.Pickler` with the reducers described in the module docstring, plus `by_reference`.

    Everything goes through `reducer_override` (called only for non-builtin objects) and not through
    `persistent_id` (called for every object, which tripled the time to pickle moto's EC2 backend).
    """

    def __init__(self, file: BinaryIO, by_reference: ByReference | None = None) -> None:
        super().__init__(file, protocol=PICKLE_PROTOCOL)
        self._by_reference = by_reference
        self._reducers: dict[type, Callable[[Any], Any] | None] = {}

    def reducer_override(self, obj: object) -> Any:
        cls = type(obj)
        try:
            reducer = self._reducers[cls]
        except KeyError:
            reducer = self._reducers[cls] = self._reducer_for(cls)
        if reducer is None:
            return NotImplemented
        return reducer(obj)

    def _reducer_for(self, cls: type) -> Callable[[Any], Any] | None:
        if self._by_reference is not None and issubclass(cls, self._by_reference.types):
            return self._by_reference.reduce
        try:
            return _REDUCER_CACHE[cls]
        except KeyError:
            reducer = _REDUCER_CACHE[cls] = _reducer_for(cls)
            return reducer


def dumps(obj: object, by_reference: ByReference | None = None) -> bytes:
    """Pickle `obj` with `StatePickler`."""
    buffer = io.BytesIO()
    StatePickler(buffer, by_reference).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    """Unpickle what `dumps` produced. Only for files this harness wrote: unpickling runs code."""
    return pickle.loads(data)
