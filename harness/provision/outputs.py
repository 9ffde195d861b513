"""What provisioning leaves in the state dir: the env contract's values and a fingerprint of its inputs.

Kept apart from the provisioning code so that `status`, `env` and an already-up `up` stay quick to import.
"""

from __future__ import annotations

import hashlib
import json

from harness.connections import Infrastructure
from harness.state import StateDir
from harness.topology import Topology

OUTPUTS_FILE = "outputs.json"


def fingerprint(topology: Topology, infra: Infrastructure) -> str:
    """Changes when anything provisioning depends on changes (topology content, endpoints)."""
    doc = {
        "topology": topology.model_dump(
            mode="json", exclude={"source", "console"}
        ),  # the console: nothing to provision
        "endpoints": [infra.postgres.endpoint, infra.redis.endpoint, infra.aws.url],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def saved_outputs(state: StateDir) -> tuple[dict[str, str], str | None]:
    data = state.read_json(OUTPUTS_FILE)
    values = data.get("values", {})
    fp = data.get("fingerprint")
    return ({str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}), (
        str(fp) if fp else None
    )
