"""Finding moto's pools, clients and users by the ids a request names, with Cognito's errors."""

from __future__ import annotations

from typing import cast

from harness.emulator.fidelity.cognito.common import WRONG_CREDENTIALS, CognitoError, Found, not_authorized
from harness.emulator.fidelity.cognito.moto_types import MotoBackend, MotoClient, MotoPool, MotoUser


class Lookup:
    """moto's Cognito state of one account, every region."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def backends(self) -> list[tuple[str, MotoBackend]]:
        from moto.cognitoidp.models import cognitoidp_backends

        backends = cast(dict[str, dict[str, MotoBackend]], cognitoidp_backends)
        regions = dict.get(backends, self.account_id) or {}
        return [(region, backend) for region, backend in dict.items(regions) if region != "global"]

    def pools(self) -> list[tuple[MotoBackend, MotoPool]]:
        return [(backend, pool) for _, backend in self.backends() for pool in backend.user_pools.values()]

    def client(self, client_id: object) -> Found:
        """The pool and client of an app client id (InitiateAuth names only the client)."""
        for backend, pool in self.pools():
            client = pool.clients.get(client_id) if isinstance(client_id, str) else None
            if client is not None:
                return Found(backend, pool, client)
        raise CognitoError("ResourceNotFoundException", f"User pool client {client_id} does not exist.")

    def pool(self, pool_id: object) -> tuple[MotoBackend, MotoPool]:
        for _, backend in self.backends():
            pool = backend.user_pools.get(pool_id) if isinstance(pool_id, str) else None
            if pool is not None:
                return backend, pool
        raise CognitoError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")

    def pool_client(self, pool_id: object, client_id: object) -> Found:
        """A client of a given pool (the Admin* operations name both)."""
        backend, pool = self.pool(pool_id)
        client = pool.clients.get(client_id) if isinstance(client_id, str) else None
        if client is None:
            raise CognitoError("ResourceNotFoundException", f"User pool client {client_id} does not exist.")
        return Found(backend, pool, client)

    @staticmethod
    def user(pool: MotoPool, username: str | None) -> MotoUser | None:
        if not username:
            return None
        return pool._get_user(username)

    @staticmethod
    def unknown_user(client: MotoClient) -> CognitoError:
        if client.extended_config.get("PreventUserExistenceErrors") == "ENABLED":
            return not_authorized(WRONG_CREDENTIALS)
        return CognitoError("UserNotFoundException", "User does not exist.")

    def user_for_access_token(self, token: object) -> tuple[MotoPool, MotoUser]:
        for _, pool in self.pools():
            entry = pool.access_tokens.get(token) if isinstance(token, str) else None
            if entry is not None:
                user = pool._get_user(entry[1])
                if user is not None:
                    return pool, user
        raise not_authorized("Invalid Access Token")
