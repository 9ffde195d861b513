"""The WSGI side: Cognito JSON calls go to `CognitoAuth` first, the discovery documents are served here, and
everything else goes on to moto."""

from __future__ import annotations

import json
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import STATE_CHANGED_KEY
from harness.emulator.fidelity.cognito.auth import CognitoAuth
from harness.emulator.fidelity.cognito.common import TARGET_PREFIX, Body, CognitoError
from harness.emulator.fidelity.cognito.discovery import JWKS_PATH, OPENID_PATH
from harness.emulator.fidelity.config import COGNITO_ISSUER, COGNITO_POOL_KEYS
from harness.emulator.fidelity.wsgi import json_error, json_response, read_body


class CognitoCheck:
    """WSGI middleware: Cognito JSON calls go to `CognitoAuth` first; what it does not answer goes to moto."""

    def __init__(self, app: WSGIApplication, auth: CognitoAuth) -> None:
        self.app = app
        self.auth = auth

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith(TARGET_PREFIX):
            return self._operation(target[len(TARGET_PREFIX) :], environ, start_response)
        is_get = str(environ.get("REQUEST_METHOD", "")).upper() == "GET"
        path = str(environ.get("PATH_INFO", ""))
        if is_get and self.auth.on(COGNITO_ISSUER) and (match := OPENID_PATH.match(path)):
            return _json_document(start_response, self.auth.openid_configuration(match["pool"]))
        if is_get and self.auth.on(COGNITO_POOL_KEYS) and (match := JWKS_PATH.match(path)):
            found = self.auth.jwks(match["pool"])
            if found is not None:
                document, made = found
                if made:
                    environ[STATE_CHANGED_KEY] = True  # a new key: the next snapshot must carry it
                return _json_document(start_response, document)
        return self.app(environ, start_response)

    def _operation(
        self, action: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            body = json.loads(read_body(environ) or b"{}")
        except ValueError:
            return self.app(environ, start_response)  # moto reports the malformed body
        if not isinstance(body, dict):
            return self.app(environ, start_response)
        try:
            result = self.auth.handle(action, body)
        except CognitoError as exc:
            return json_error(start_response, exc.code, exc.message)
        if result is None:
            return self.app(environ, start_response)
        return json_response(start_response, 200, result)


def _json_document(start_response: StartResponse, document: Body) -> Iterable[bytes]:
    payload = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
