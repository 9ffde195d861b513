"""No repr the harness defines shows a secret: pytest prints reprs in tracebacks, and those land in CI logs."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pydantic
import pytest

import harness

SECRET_FIELD = re.compile(
    r"(?i)(password|passwd|secret|token|private|signing_key|credential|api_key|_env_cache)"
)
# Fields whose name matches but whose value is no secret (a flag, a count, a name, a reference).
NOT_SECRETS = {
    "generate_secret",
    "is_secret",
    "refresh_token_rotation",
    "refresh_token_grace_seconds",
    "secrets_manager_arn",
    "on_secret",
    "password_policy",
    "harness.topology.Topology.secrets",
}  # fmt: skip  (the topology's secrets are names and references)


def _patches_the_process(name: str) -> bool:
    """A process entry that patches the standard library on import (gevent for locust): importing it here
    would change every later test of this process. Its classes are checked by reading, not importing."""
    spec = importlib.util.find_spec(name)
    source = Path(spec.origin).read_text() if spec and spec.origin and spec.origin.endswith(".py") else ""
    return bool(re.search(r"^(from gevent import monkey|import locust|from locust)", source, re.M))


def _harness_classes() -> list[type]:
    classes: list[type] = []
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        if info.name.endswith("__main__") or _patches_the_process(info.name):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (docker) missing here: nothing to check in it
            continue
        classes += [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == info.name]
    return classes


def _secret_fields_shown(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        fields = {f.name: f.repr for f in dataclasses.fields(cls)}
    elif issubclass(cls, pydantic.BaseModel):
        fields = {name: f.repr for name, f in cls.model_fields.items()}
    else:
        return []
    qualified = f"{cls.__module__}.{cls.__qualname__}."
    return [
        n
        for n, shown in fields.items()
        if shown and SECRET_FIELD.search(n) and n not in NOT_SECRETS and qualified + n not in NOT_SECRETS
    ]


def test_every_secret_field_of_a_harness_class_is_kept_out_of_its_repr() -> None:
    classes = _harness_classes()
    assert len(classes) > 100  # the walk found the harness
    shown = {f"{c.__module__}.{c.__qualname__}": f for c in classes if (f := _secret_fields_shown(c))}
    assert not shown, f"secret fields in a repr (use field(repr=False) or a masking __repr__): {shown}"


def test_the_actor_repr_shows_who_not_the_credentials() -> None:
    from harness.scenarios.actors import Actor
    from harness.scenarios.identity import Tokens

    tokens = Tokens(access="eyJ-access-9f3a", id="eyJ-id-77b1", refresh="refresh-5d2e-secret")
    actor = Actor("acme.owner", "o@acme.test", "Pw-4b9e-secret!", "sub-1", "Olivia", "acme", "owner", tokens)
    text = repr(actor) + str(actor) + repr(tokens)
    assert "acme.owner" in text and "o@acme.test" in text
    for secret in ("Pw-4b9e-secret!", "eyJ-access-9f3a", "eyJ-id-77b1", "refresh-5d2e-secret"):
        assert secret not in text


@pytest.mark.parametrize("field", ["password"])
def test_connection_reprs_mask_passwords(field: str) -> None:
    from harness.connections import PostgresConnection, RedisConnection

    pg = PostgresConnection(
        host="127.0.0.1", port=5432, superuser="postgres", password="pg-pw-8c1d", database="x"
    )
    rd = RedisConnection(host="127.0.0.1", port=6379, username="admin", password="rd-pw-3e9f")
    assert "pg-pw-8c1d" not in repr(pg) and "rd-pw-3e9f" not in repr(rd)
