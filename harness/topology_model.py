"""The base of every table of the topology model (harness.topology, harness.topology_deploy)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

Port = Annotated[int, Field(ge=1, le=65535)]


class TableModel(BaseModel):
    """The base of every topology table: frozen, unknown keys refused, TOML's types taken strictly."""

    # strict: TOML has real types, so `port = true` or `port = "5432"` is a mistake, not a 1 or a 5432.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _arrays_are_tuples(cls, value: Any) -> Any:
        # Every array field is a tuple (frozen); strict mode takes only tuples, TOML gives lists.
        return tuple(value) if isinstance(value, list) else value
