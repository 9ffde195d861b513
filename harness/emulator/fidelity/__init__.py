"""AWS-faithful checks in front of moto, where the architecture's security depends on AWS refusing things.

moto 5.2.5 accepts what AWS refuses in exactly the places this project relies on: Cognito's SECRET_HASH, TOTP,
MFA, refresh-token rotation and revocation, SRP, the token issuer; S3's presigned URLs and POST policies. The
middlewares here sit in the emulator's `checks` slot (see `harness.emulator.app`) and make those calls behave
like AWS, from moto's own state, without changing moto:

- `S3PresignCheck` (`s3.py`): checks `s3-presigned-url`, `s3-presigned-post`, `s3-anonymous`.
- `CognitoCheck` + `CognitoAuth` (`cognito/`, a package): checks `cognito-secret-hash`, `cognito-auth-flows`,
  `cognito-srp`, `cognito-totp`, `cognito-mfa`, `cognito-refresh-rotation`, `cognito-revoke`, `cognito-issuer`,
  `cognito-pool-keys` (`keys.py`).

Every check is on by default. Switch one off only to diagnose a difference from AWS:
`python -m harness.emulator --fidelity-off cognito-srp,s3-presigned-url` or
`HARNESS_EMULATOR_FIDELITY_OFF=cognito-srp` (`all` for every check); `/_harness/health` reports which run.
`harness/fidelity.py` is the ledger of these behaviours and of the tests that prove them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from wsgiref.types import WSGIApplication

from harness.emulator.fidelity.config import CHECKS, FidelityConfig

if TYPE_CHECKING:
    from harness.emulator.config import EmulatorConfig

__all__ = ["CHECKS", "FidelityConfig", "build_checks"]

Middleware = Callable[[WSGIApplication], WSGIApplication]

S3_CHECKS = frozenset(name for name in CHECKS if name.startswith("s3-"))
COGNITO_CHECKS = frozenset(name for name in CHECKS if name.startswith("cognito-"))


def build_checks(config: EmulatorConfig, endpoint: str | None = None) -> list[Middleware]:
    """The middlewares for `config.fidelity`, outermost first. `endpoint`: where the emulator really listens
    (defaults to `config.endpoint`); the local Cognito issuer is under it unless `fidelity.public_url` is set."""
    from harness.emulator.fidelity.cognito import CognitoAuth, CognitoCheck
    from harness.emulator.fidelity.s3 import S3PresignCheck

    fidelity = config.fidelity
    checks: list[Middleware] = []
    if any(fidelity.enabled(name) for name in S3_CHECKS):

        def s3(app: WSGIApplication) -> WSGIApplication:
            return S3PresignCheck(app, fidelity, config.account_id, config.region)

        checks.append(s3)
    if any(fidelity.enabled(name) for name in COGNITO_CHECKS):
        auth = CognitoAuth(fidelity, config.account_id, fidelity.public_url or endpoint or config.endpoint)

        def cognito(app: WSGIApplication) -> WSGIApplication:
            return CognitoCheck(app, auth)

        checks.append(cognito)
    return checks
