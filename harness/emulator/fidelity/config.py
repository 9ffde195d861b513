"""Which AWS-faithful checks run, and the few facts they need. Imports nothing heavy (no moto)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

COGNITO_SECRET_HASH = "cognito-secret-hash"
COGNITO_AUTH_FLOWS = "cognito-auth-flows"
COGNITO_SRP = "cognito-srp"
COGNITO_TOTP = "cognito-totp"
COGNITO_MFA = "cognito-mfa"
COGNITO_REFRESH_ROTATION = "cognito-refresh-rotation"
COGNITO_REVOKE = "cognito-revoke"
COGNITO_ISSUER = "cognito-issuer"
COGNITO_POOL_KEYS = "cognito-pool-keys"
S3_PRESIGNED_URL = "s3-presigned-url"
S3_PRESIGNED_POST = "s3-presigned-post"
S3_ANONYMOUS = "s3-anonymous"
S3_PUBLIC_ACCESS_BLOCK = "s3-public-access-block"

CHECKS: Mapping[str, str] = {
    COGNITO_SECRET_HASH: "SECRET_HASH required and verified for app clients with a secret (every auth flow, "
    "sign-up, confirmation and password-reset call)",
    COGNITO_AUTH_FLOWS: "an auth flow is refused unless the app client's ExplicitAuthFlows allow it",
    COGNITO_SRP: "USER_SRP_AUTH verifies the SRP-6a password claim (wrong password refused)",
    COGNITO_TOTP: "RFC 6238 TOTP: a real base32 secret per user, the current code +-1 step, no code used twice",
    COGNITO_MFA: "MfaConfiguration honoured (OFF/OPTIONAL/ON: SOFTWARE_TOKEN_MFA or MFA_SETUP challenge), and "
    "MFA required for members of the configured groups",
    COGNITO_REFRESH_ROTATION: "refresh-token rotation per app client (GetTokensFromRefreshToken returns a new "
    "refresh token, the old one works only within RetryGracePeriodSeconds; REFRESH_TOKEN_AUTH refused)",
    COGNITO_REVOKE: "RevokeToken revokes a refresh token and every access token issued from it",
    COGNITO_ISSUER: "tokens name a local issuer <public url>/<pool id> whose /.well-known/jwks.json and "
    "openid-configuration the emulator serves",
    COGNITO_POOL_KEYS: "every user pool signs with its own RSA key (own kid), served as that pool's JWKS "
    "(moto signs every pool with one key shipped inside moto)",
    S3_PRESIGNED_URL: "SigV4 query-signed URLs verified (method, path, query, signed headers, X-Amz-Expires, "
    "credential scope); SigV2 URLs refused",
    S3_PRESIGNED_POST: "browser POST uploads need a SigV4-signed, unexpired policy whose conditions every form "
    "field and the file size meet",
    S3_ANONYMOUS: "unsigned S3 requests are refused with AccessDenied unless the bucket policy is public and "
    "Block Public Access allows it",
    S3_PUBLIC_ACCESS_BLOCK: "a bucket's Block Public Access settings hold for writes: public ACLs (canned, grant "
    "headers, ACL documents, a POST form's `acl`) refused under BlockPublicAcls, a public bucket policy under "
    "BlockPublicPolicy (403 AccessDenied)",
}
"""Every check by name, with what it makes the emulator do. All run unless switched off."""

ENV_OFF = "HARNESS_EMULATOR_FIDELITY_OFF"
ENV_MFA_REQUIRED_GROUPS = "HARNESS_EMULATOR_MFA_REQUIRED_GROUPS"
ENV_PUBLIC_URL = "HARNESS_EMULATOR_PUBLIC_URL"
ENV_CREDENTIALS = "HARNESS_EMULATOR_CREDENTIALS"
ALL = "all"

# The harness's own credentials (harness.connections.LOCAL_AWS_*): what presigned URLs are signed with locally.
DEFAULT_CREDENTIALS: tuple[tuple[str, str], ...] = (("test", "test"),)


class UnknownCheckError(ValueError):
    """A switch names a check that does not exist."""


def parse_check_names(text: str) -> frozenset[str]:
    """`"cognito-srp, s3-presigned-url"` (or `"all"`) as a set of check names; unknown names raise."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    if ALL in names:
        return frozenset(CHECKS)
    unknown = sorted(names - set(CHECKS))
    if unknown:
        raise UnknownCheckError(
            f"unknown fidelity check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)} (or {ALL})"
        )
    return frozenset(names)


def parse_groups(text: str) -> tuple[str, ...]:
    """`"Owner,Admin"` as `("Owner", "Admin")`."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_credentials(text: str) -> tuple[tuple[str, str], ...]:
    """`"KEY:SECRET,KEY2:SECRET2"` as pairs; a malformed entry raises `ValueError`."""
    pairs = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        key, sep, secret = entry.partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"credentials entry {entry!r} is not ACCESS_KEY_ID:SECRET_ACCESS_KEY")
        pairs.append((key, secret))
    return tuple(pairs)


@dataclass(frozen=True)
class FidelityConfig:
    """The AWS-faithful checks of one emulator process.

    `disabled`: checks switched off (for diagnosis only). `public_url`: the base of the local Cognito issuer
    (None = the emulator's own endpoint). `mfa_required_groups`: Cognito groups whose members must use MFA
    when their pool's MfaConfiguration is OPTIONAL (the topology's `cognito.mfa_required_groups`).
    `credentials`: access key id -> secret for verifying S3 signatures (IAM users' keys are found too).
    """

    disabled: frozenset[str] = frozenset()
    public_url: str | None = None
    mfa_required_groups: tuple[str, ...] = ()
    credentials: tuple[tuple[str, str], ...] = field(default=DEFAULT_CREDENTIALS, repr=False)
    disabled_by: str | None = field(default=None, compare=False)  # where `disabled` came from (for health)

    def enabled(self, check: str) -> bool:
        """Whether `check` (one of `CHECKS`) runs."""
        return check not in self.disabled

    def as_json(self, default_public_url: str | None = None) -> dict[str, Any]:
        """The `fidelity` part of `/_harness/health` (`default_public_url`: the emulator's endpoint)."""
        return {
            "checks": {
                name: {"enabled": name not in self.disabled, "what": what} for name, what in CHECKS.items()
            },
            "disabled": sorted(self.disabled),
            "disabled_by": self.disabled_by,
            "public_url": self.public_url or default_public_url,
            "cognito_issuer": f"{(self.public_url or default_public_url or '').rstrip('/')}/<user pool id>",
            "mfa_required_groups": list(self.mfa_required_groups),
            "credentials": [key for key, _ in self.credentials],
            "switch": f"--fidelity-off NAME[,NAME] or {ENV_OFF}=NAME[,NAME] ({ALL} for every check)",
        }

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        off: Iterable[str] = (),
        public_url: str | None = None,
        mfa_required_groups: str | None = None,
        credentials: str | None = None,
    ) -> FidelityConfig:
        """The configuration from the environment, with command-line values (when given) taking precedence.

        Raises `ValueError` (`UnknownCheckError`) for an unknown check name or malformed credentials.
        """
        env = os.environ if environ is None else environ
        disabled: set[str] = set()
        sources = []
        if env.get(ENV_OFF, "").strip():
            disabled |= parse_check_names(env[ENV_OFF])
            sources.append(ENV_OFF)
        off_flags = [item for item in off if item.strip()]
        for item in off_flags:
            disabled |= parse_check_names(item)
        if off_flags:
            sources.append("--fidelity-off")
        groups = (
            mfa_required_groups if mfa_required_groups is not None else env.get(ENV_MFA_REQUIRED_GROUPS, "")
        )
        creds_text = credentials if credentials is not None else env.get(ENV_CREDENTIALS)
        return cls(
            disabled=frozenset(disabled),
            public_url=(public_url or env.get(ENV_PUBLIC_URL) or None),
            mfa_required_groups=parse_groups(groups),
            credentials=parse_credentials(creds_text) if creds_text else DEFAULT_CREDENTIALS,
            disabled_by=" and ".join(sources) or None,
        )
