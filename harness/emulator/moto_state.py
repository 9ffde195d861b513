"""moto's in-memory state as bytes and back: the one module that knows how moto keeps its backends.

moto keeps each service's state in a module-level `BackendDict` (`{account_id: {region: Backend}}`) and lists
the dicts that were ever touched in `BackendDict._instances`. A capture pickles the region backends of those
dicts in one pass (so references between backends, e.g. SESv2 -> SES, stay shared) and names the live
registries instead of copying them. A restore unpickles everything first and only then installs the backends
into the live registries, so a bad state file changes nothing.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict, BaseBackend
from moto.core.models import DEFAULT_ACCOUNT_ID as MOTO_DEFAULT_ACCOUNT_ID

from harness.emulator import pickling
from harness.errors import StateError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    registry: str  # "module:attribute" of the BackendDict, e.g. "moto.s3.models:s3_backends"
    account_id: str
    region: str
    backend: BaseBackend

    @property
    def label(self) -> str:
        return f"{self.registry.rpartition(':')[2].removesuffix('_backends')}/{self.account_id}/{self.region}"


@dataclass(frozen=True)
class CapturedState:
    """One pickled capture: the bytes, which backends they hold and which ones could not be pickled."""

    data: bytes
    backends: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoredState:
    """What a restore installed, plus the extra values stored beside the backends."""

    backends: tuple[str, ...]
    extras: dict[str, Any]


class MotoState:
    """Captures, restores and resets the state of every moto backend in this process.

    `account_id` is the account the emulator serves. moto creates backends of its own default account
    (123456789012) in us-east-1 just to resolve URLs; when the served account differs those hold nothing a
    client could reach, so they are left out of captures.
    """

    def __init__(self, account_id: str) -> None:
        self._skip_account = None if account_id == MOTO_DEFAULT_ACCOUNT_ID else MOTO_DEFAULT_ACCOUNT_ID
        self._registry_keys: dict[int, str] = {}
        self._warned: set[tuple[str, str]] = set()

    def capture(self, extras: dict[str, Any]) -> CapturedState:
        """Pickle every touched backend plus `extras`. Call it while no request runs (the gate is exclusive).

        A backend that cannot be pickled is left out (logged once with the reason) so one odd service never
        costs the others their persistence.
        """
        entries, all_backends = self._entries()
        try:
            data = self._dump(entries, all_backends, extras)
            return CapturedState(data, tuple(entry.label for entry in entries))
        except Exception:  # any pickling error: find the culprits below
            pass
        skipped: dict[str, str] = {}
        kept: list[_Entry] = []
        for entry in entries:
            try:
                self._dump([entry], all_backends, {})
                kept.append(entry)
            except Exception as exc:  # reported per backend instead
                reason = f"{type(exc).__name__}: {exc}"
                skipped[entry.label] = reason
                if (entry.label, reason) not in self._warned:
                    self._warned.add((entry.label, reason))
                    log.warning(
                        "AWS emulator: not persisting %s, it cannot be pickled (%s)", entry.label, reason
                    )
        try:
            data = self._dump(kept, all_backends, extras)
        except Exception as exc:
            raise StateError(
                f"AWS emulator: the state cannot be pickled even without {sorted(skipped)}: "
                f"{type(exc).__name__}: {exc}",
                hint="report it with the service you used; meanwhile state is kept in memory only",
            ) from exc
        return CapturedState(data, tuple(entry.label for entry in kept), skipped)

    def restore(self, data: bytes) -> RestoredState:
        """Unpickle a capture and install its backends into the live registries.

        Raises (and installs nothing) if the bytes cannot be unpickled or name a registry this moto lacks.
        """
        payload = pickling.loads(data)
        if not isinstance(payload, dict) or not isinstance(payload.get("backends"), list):
            raise StateError("the state holds no backend list")
        installs: list[tuple[BackendDict[Any], _Entry]] = []
        for item in payload["backends"]:
            entry = _Entry(*item)
            if not isinstance(entry.backend, BaseBackend):
                raise StateError(f"{entry.label} is a {type(entry.backend).__name__}, not a moto backend")
            installs.append((self._resolve_registry(entry.registry), entry))
        for registry, entry in installs:
            # dict's own __setitem__: the region key may be one AccountSpecificBackend would not create itself
            dict.__setitem__(registry[entry.account_id], entry.region, entry.backend)
        extras = payload.get("extras")
        return RestoredState(
            tuple(entry.label for _, entry in installs), extras if isinstance(extras, dict) else {}
        )

    def reset(self) -> None:
        """Empty every backend through moto's own reset (what `POST /moto-api/reset` does)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    # -- capture helpers -------------------------------------------------------------------------------

    def _entries(self) -> tuple[list[_Entry], dict[int, tuple[str, str, str]]]:
        entries: list[_Entry] = []
        all_backends: dict[int, tuple[str, str, str]] = {}
        for registry in list(BackendDict._instances):  # type: ignore[misc]
            key = self._registry_key(registry)
            for account_id, per_account in list(registry.items()):
                for region, backend in list(per_account.items()):
                    all_backends[id(backend)] = (key, account_id, region)
                    if account_id != self._skip_account:
                        entries.append(_Entry(key, account_id, region, backend))
        return entries, all_backends

    def _dump(
        self, entries: list[_Entry], all_backends: dict[int, tuple[str, str, str]], extras: dict[str, Any]
    ) -> bytes:
        roots = {id(entry.backend) for entry in entries}

        def reference(obj: Any) -> Any:
            if isinstance(obj, BaseBackend):
                if id(obj) in roots:
                    return NotImplemented
                location = all_backends.get(id(obj))
                return NotImplemented if location is None else (live_backend, location)
            if isinstance(obj, BackendDict):
                return (live_registry, (self._registry_key(obj),))
            account = self._account_location(obj)
            return NotImplemented if account is None else (live_account, account)

        payload = {
            "backends": [(e.registry, e.account_id, e.region, e.backend) for e in entries],
            "extras": extras,
        }
        return pickling.dumps(
            payload, pickling.ByReference((BaseBackend, BackendDict, AccountSpecificBackend), reference)
        )

    def _account_location(self, per_account: AccountSpecificBackend[Any]) -> tuple[str, str] | None:
        for registry in BackendDict._instances:  # type: ignore[misc]
            if dict.get(registry, per_account.account_id) is per_account:
                return (self._registry_key(registry), per_account.account_id)
        return None

    def _registry_key(self, registry: BackendDict[Any]) -> str:
        """Where a BackendDict lives, as "module:attribute" (looked up once per registry)."""
        key = self._registry_keys.get(id(registry))
        if key is not None:
            return key
        home = sys.modules.get(registry.backend.__module__)
        others = sorted(
            (name, module)
            for name, module in list(sys.modules.items())
            if name.startswith("moto.") and module
        )
        for module in [home, *(module for _, module in others)]:
            if module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if value is registry:
                    key = f"{module.__name__}:{attribute}"
                    self._registry_keys[id(registry)] = key
                    return key
        raise StateError(
            f"AWS emulator: cannot find where moto defines the backends of {registry.service_name!r}",
            hint="this moto version keeps its backends somewhere new; harness/emulator/moto_state.py "
            "needs to learn it",
        )

    def _resolve_registry(self, key: str) -> BackendDict[Any]:
        registry = live_registry(key)
        self._registry_keys[id(registry)] = key
        return registry


# -- what references in a capture turn into when unpickled (names are part of the state format) ----------


def live_registry(key: str) -> BackendDict[Any]:
    """The live BackendDict at "module:attribute"."""
    module_name, _, attribute = key.partition(":")
    try:
        registry = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise StateError(f"this moto has no backend registry {key}") from exc
    if not isinstance(registry, BackendDict):
        raise StateError(f"{key} is not a moto BackendDict")
    return registry


def live_account(key: str, account_id: str) -> AccountSpecificBackend[Any]:
    """The live per-account dict of a registry (created if needed)."""
    return live_registry(key)[account_id]


def live_backend(key: str, account_id: str, region: str) -> BaseBackend:
    """A live backend that was not part of the capture (created if needed)."""
    backend: BaseBackend = live_registry(key)[account_id][region]
    return backend
