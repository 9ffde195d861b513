"""moto's EC2 imported only when something uses it, so SSM does not cost the emulator ~1 s and ~110 MB.

`moto.ssm.models` does `from moto.ec2 import ec2_backends` at import (it reads EC2 only to resolve the targets of
`SendCommand`), and importing moto's EC2 loads every instance type, AMI and offering moto ships. The stack uses
SSM (the env contract's parameters) and never EC2, so every emulator start and restore paid for it.

`install()` puts a `moto.ec2` package in `sys.modules` that is the real package (same `__path__`: its
submodules import as usual) without running its `__init__` (which is only `from .models import ec2_backends`);
its `ec2_backends` is a stand-in that imports `moto.ec2.models` on first use and hands every operation to the
real registry. Any other attribute of the package (`moto.ec2.models`, ...) imports the real models first.
The state file is unaffected: a capture names registries by their home module (`moto.ec2.models:ec2_backends`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

PACKAGE = "moto.ec2"
MODELS = "moto.ec2.models"


def _real() -> Any:
    return importlib.import_module(MODELS).ec2_backends


class LazyEc2Backends:
    """Stands for `moto.ec2.models.ec2_backends` (a `BackendDict`) until, and after, EC2 is first used.
    It passes for the real one in `isinstance` (moto's dispatcher checks it) by naming the real one's class."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(_real())

    def __getitem__(self, key: str) -> Any:
        return _real()[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(_real(), name)

    def __contains__(self, key: object) -> bool:
        return key in _real()

    def __iter__(self) -> Iterator[str]:
        return iter(_real())

    def __len__(self) -> int:
        return len(_real())

    def __repr__(self) -> str:
        loaded = "loaded" if MODELS in sys.modules else "not loaded yet"
        return f"<moto.ec2.ec2_backends, imported on first use ({loaded})>"


def install() -> bool:
    """Make `moto.ec2` lazy in this process. False (and nothing changed) when it is already imported."""
    if PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return False  # another moto layout: leave it alone, it only costs the time
    package = importlib.util.module_from_spec(spec)  # __path__, __spec__, __file__: a real package, not run

    def package_getattr(name: str) -> Any:
        models = importlib.import_module(MODELS)  # binds `moto.ec2.models` on the package as it imports
        if name in vars(package):
            return vars(package)[name]
        return getattr(models, name)

    package.ec2_backends = LazyEc2Backends()  # type: ignore[attr-defined]
    package.__getattr__ = package_getattr  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    moto = sys.modules.get("moto")
    if isinstance(moto, ModuleType):
        moto.ec2 = package  # type: ignore[attr-defined]
    return True
