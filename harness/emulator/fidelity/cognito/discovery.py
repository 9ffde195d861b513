"""Discovery: each pool's JWKS (its own signing key, keys.py) and an openid-configuration naming the issuer
`<public url>/<pool id>` that the pool's tokens carry."""

from __future__ import annotations

import re

from harness.emulator.fidelity import keys
from harness.emulator.fidelity.cognito.common import Body
from harness.emulator.fidelity.cognito.tokens import Tokens

OPENID_PATH = re.compile(r"^/(?P<pool>[\w-]+_[0-9A-Za-z]+)/\.well-known/openid-configuration$")
JWKS_PATH = re.compile(r"^/(?P<pool>[\w-]+_[0-9A-Za-z]+)/\.well-known/jwks\.json$")


class Discovery:
    def __init__(self, account_id: str, tokens: Tokens) -> None:
        self.account_id = account_id
        self.tokens = tokens

    def jwks(self, pool_id: str) -> tuple[Body, bool] | None:
        """(the pool's JWKS, whether its key was made just now), or None for an unknown pool."""
        pool = keys.find_user_pool(self.account_id, pool_id)
        if pool is None:
            return None
        made = getattr(pool, "harness_signing_kid", None) is None
        return keys.public_jwks(pool), made

    def openid_configuration(self, pool_id: str) -> Body:
        issuer = self.tokens.issuer(pool_id)
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "response_types_supported": ["code", "token"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
