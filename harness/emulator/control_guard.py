"""The `/_harness/` endpoints that hand out secrets answer only this machine, and only with the stack's token.

`GET /_harness/cognito/signing-key` (a pool's private signing key) and `GET`/`PUT /_harness/state` (every
backend's state: secrets, users, keys) are what a test needs to mint tokens or move state; anyone who could
reach them could forge any user's token. So they need both:

- a request from a loopback address (127.0.0.0/8, ::1). The Docker tier runs the emulator in a container
  whose port is published on the host's 127.0.0.1 only and sets `HARNESS_EMULATOR_CONTROL_FROM=private`,
  which also admits the private addresses the host's and the stack's own containers arrive from;
- the header `X-Harness-Control-Token` with the stack's control token: the harness generates it per state dir
  (`secrets.json`, mode 0600) and starts the emulator with it in `HARNESS_EMULATOR_CONTROL_TOKEN`. An emulator
  started without one serves no secret at all. Tests get it through `RunningStack.control_headers()`.

Health, snapshot, reset and the captured mail stay open to loopback clients as before (the mail is what the
developer reads in `harness mail`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import CONTROL_PREFIX

CONTROL_TOKEN_ENV = "HARNESS_EMULATOR_CONTROL_TOKEN"
CONTROL_FROM_ENV = "HARNESS_EMULATOR_CONTROL_FROM"
CONTROL_TOKEN_HEADER = "X-Harness-Control-Token"
CONTROL_FROM_CHOICES = ("loopback", "private")
CONTROL_TOKEN_SECRET = "aws-control-token"  # its name in the state dir's secrets.json
# RFC 1918 and IPv6 unique-local: where Docker's bridge networks live (`is_private` also admits documentation
# and other reserved ranges, which are not this machine either).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
SECRET_PATHS = frozenset({CONTROL_PREFIX + "cognito/signing-key", CONTROL_PREFIX + "state"})


def _allowed_address(remote: str, control_from: str) -> bool:
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return True
    return control_from == "private" and any(address in network for network in PRIVATE_NETWORKS)


def refusal(
    environ: WSGIEnvironment, token: str | None, control_from: str
) -> tuple[int, dict[str, Any]] | None:
    """Why a request for a secret-bearing path is refused (status, JSON body), or None when it may pass."""
    path = str(environ.get("PATH_INFO", "")).rstrip("/")
    if path not in SECRET_PATHS:
        return None
    remote = str(environ.get("REMOTE_ADDR", ""))
    if not _allowed_address(remote, control_from):
        return 403, {
            "error": f"{path} answers only this machine (loopback), not {remote or 'an unknown address'}",
            "hint": "it hands out secrets; call it from the machine the stack runs on",
        }
    if not token:
        return 403, {
            "error": f"{path} is off: this emulator was started without a control token",
            "hint": f"start it with {CONTROL_TOKEN_ENV} set (the harness does: `harness up`)",
        }
    given = str(environ.get("HTTP_" + CONTROL_TOKEN_HEADER.upper().replace("-", "_"), ""))
    if not hmac.compare_digest(given.encode(), token.encode()):
        return 401, {
            "error": f"{path} needs the stack's control token in the {CONTROL_TOKEN_HEADER} header"
            + (" (the one given is wrong)" if given else ""),
            "hint": "tests: RunningStack.control_headers() (the token is in the state dir's secrets.json)",
        }
    return None


class ControlGuardMiddleware:
    """Refuses secret-bearing `/_harness/` requests that are not from this machine with the token."""

    def __init__(self, app: WSGIApplication, token: str | None, control_from: str = "loopback") -> None:
        self.app = app
        self._token = token
        self.control_from = control_from

    def __repr__(self) -> str:
        return f"ControlGuardMiddleware(control_from={self.control_from!r}, token={'***' if self._token else None})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refused = refusal(environ, self._token, self.control_from)
        if refused is None:
            return self.app(environ, start_response)
        status, body = refused
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [payload]
