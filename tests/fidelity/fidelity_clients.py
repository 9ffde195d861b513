"""Clients and pool factories of the fidelity suite (imported by its tests; fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
REGION = "me-south-1"
PASSWORD = "Correct-Horse-9-Battery"
MFA_REQUIRED_GROUPS = ("Owner", "Admin")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Emulator:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    control_token: str = field(default="", repr=False)  # for the secret-bearing /_harness/ paths
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, **config: Any) -> Any:
        key = f"{service}{sorted(config.items())}"
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(retries={"max_attempts": 1}, **config),
            )
        return self._clients[key]

    def get_json(self, path: str) -> Any:
        import json

        with urllib.request.urlopen(self.endpoint + path, timeout=10) as response:
            return json.loads(response.read())


@dataclass
class Pool:
    """A user pool with one app client, made fresh for a test."""

    idp: Any
    id: str
    client_id: str
    client_secret: str | None

    def secret_hash(self, username: str) -> str:
        assert self.client_secret is not None
        return secret_hash(username, self.client_id, self.client_secret)

    def auth_parameters(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        params = {"USERNAME": username, "PASSWORD": password}
        if self.client_secret:
            params["SECRET_HASH"] = self.secret_hash(username)
        return params

    def create_user(
        self, email: str | None = None, groups: tuple[str, ...] = (), confirmed: bool = True
    ) -> str:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.test"
        self.idp.admin_create_user(
            UserPoolId=self.id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        if confirmed:
            self.idp.admin_set_user_password(
                UserPoolId=self.id, Username=email, Password=PASSWORD, Permanent=True
            )
        for group in groups:
            self.idp.admin_add_user_to_group(UserPoolId=self.id, Username=email, GroupName=group)
        return email

    def internal_username(self, email: str) -> str:
        return str(self.idp.admin_get_user(UserPoolId=self.id, Username=email)["Username"])

    def sign_in(self, email: str) -> dict[str, Any]:
        """USER_PASSWORD_AUTH; returns the whole response (tokens or a challenge)."""
        return dict(
            self.idp.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters=self.auth_parameters(email),
            )
        )


class PoolFactory:
    def __init__(self, idp: Any) -> None:
        self.idp = idp

    def __call__(
        self,
        *,
        secret: bool = True,
        mfa: str = "OFF",
        flows: tuple[str, ...] = (
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_ADMIN_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ),
        rotation: int | None = None,
        groups: tuple[str, ...] = ("Owner", "Admin", "Member"),
        **client_options: Any,
    ) -> Pool:
        """`rotation`: None = refresh-token rotation off, else its RetryGracePeriodSeconds."""
        pool_id = self.idp.create_user_pool(
            PoolName=f"fidelity-{uuid.uuid4().hex[:8]}",
            UsernameAttributes=["email"],
            Policies={"PasswordPolicy": {"MinimumLength": 12}},
        )["UserPool"]["Id"]
        if mfa != "OFF":
            self.idp.set_user_pool_mfa_config(
                UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration=mfa
            )
        for precedence, group in enumerate(groups):
            self.idp.create_group(UserPoolId=pool_id, GroupName=group, Precedence=precedence)
        options: dict[str, Any] = {"ExplicitAuthFlows": list(flows), **client_options}
        if rotation is not None:
            options["RefreshTokenRotation"] = {"Feature": "ENABLED", "RetryGracePeriodSeconds": rotation}
        client = self.idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", GenerateSecret=secret, **options
        )["UserPoolClient"]
        return Pool(self.idp, pool_id, client["ClientId"], client.get("ClientSecret"))


def error_of(exc_info: pytest.ExceptionInfo[Any]) -> tuple[str, str]:
    """(code, message) of a botocore ClientError."""
    error = exc_info.value.response["Error"]
    return str(error["Code"]), str(error["Message"])
