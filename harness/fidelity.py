"""The fidelity ledger: each AWS behaviour the project relies on, whether the local tier reproduces it, the test
that proves it, and the scenarios that depend on it. One table (`LEDGER`), rendered to `docs/fidelity.md`.

What passes locally must also hold on AWS. Where the local tier (the emulator, `harness.emulator`) reproduces a
behaviour, a test in `tests/fidelity/` asserts it with real clients: the wrong input refused with AWS's error,
the right one accepted. Where it does not (`reproduced_locally=False`), a test pins today's divergence, and any
scenario that depends on the behaviour proves nothing locally: it must pass on the deployed target.

API (for the scenario engine, `deploy-staging` and the docs):

- `behaviours()` -> every `Behaviour`, in ledger order, with `scenarios` filled in.
- `behaviour(id)` -> one `Behaviour`; an unknown id raises `HarnessError` naming the known ones.
- `unproven_locally(ids=None)` -> the behaviours the local tier does not reproduce; with `ids` (say, what one
  scenario depends on), only those among them. A scenario with a non-empty answer is flagged locally and gates
  promotion on its deployed run.
- `scenario_dependencies()` -> scenario file -> behaviour ids (the declared list `SCENARIO_DEPENDENCIES`).
- `unproven_on(source, ids=None)` / `aws_source_summary(source, endpoint)`: the same for the stack's AWS source
  (`AwsComponent.source`): "harness" is the harness's emulator (the ledger as above); "external" is an
  emulator someone else runs (`[aws] endpoint`, `--aws-endpoint`), where the harness's checks do not run and
  no behaviour of the ledger is proven, so every dependency is unproven (status and the scenario summary say so).
- `render_markdown()` -> the text of `docs/fidelity.md`.

`python -m harness.fidelity > docs/fidelity.md` regenerates the document; `python -m harness.fidelity --check`
exits 1 when it is stale. `tests/fidelity/test_ledger.py` fails when the document is stale, when a behaviour names
a test that does not exist, or when an emulator check has no behaviour.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.fidelity_deploy import DEPLOY_BEHAVIOURS
from harness.fidelity_types import Behaviour as Behaviour  # re-exported: the ledger's row type

DOC_PATH = Path("docs/fidelity.md")
TESTS = "tests/fidelity"


def _t(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{TESTS}/{module}.py::{name}" for name in names)


LEDGER: tuple[Behaviour, ...] = (
    Behaviour(
        "cognito.secret-hash",
        "Cognito",
        "An app client with a secret refuses InitiateAuth, AdminInitiateAuth, RespondToAuthChallenge, SignUp, "
        "ConfirmSignUp, ForgotPassword, ConfirmForgotPassword and ResendConfirmationCode without a SECRET_HASH "
        "(NotAuthorizedException 'Client … is configured with secret but SECRET_HASH was not received') or with "
        "a wrong one ('Unable to verify secret hash for client …'); REFRESH_TOKEN_AUTH hashes the internal "
        "username, not the email alias.",
        True,
        _t(
            "test_cognito_secret_hash",
            "test_initiate_auth_without_secret_hash_is_refused",
            "test_initiate_auth_with_a_wrong_secret_hash_is_refused",
            "test_initiate_auth_with_the_right_secret_hash_signs_in",
            "test_admin_initiate_auth_needs_the_secret_hash",
            "test_respond_to_auth_challenge_needs_the_secret_hash",
            "test_refresh_token_auth_needs_the_secret_hash_of_the_internal_username",
            "test_user_operations_need_the_secret_hash",
            "test_sign_up_and_forgot_password_with_the_right_secret_hash_are_accepted",
            "test_a_client_without_a_secret_needs_no_secret_hash",
        ),
        "cognito-secret-hash",
    ),
    Behaviour(
        "cognito.password-errors",
        "Cognito",
        "A wrong password, and with PreventUserExistenceErrors an unknown user, is refused with "
        "NotAuthorizedException 'Incorrect username or password.'",
        True,
        _t("test_cognito_secret_hash", "test_a_wrong_password_is_refused_like_cognito"),
    ),
    Behaviour(
        "cognito.auth-flows",
        "Cognito",
        "An auth flow the app client's ExplicitAuthFlows do not allow is refused (InvalidParameterException "
        "'USER_PASSWORD_AUTH flow not enabled for this client').",
        True,
        _t("test_cognito_secret_hash", "test_auth_flows_the_client_does_not_allow_are_refused"),
        "cognito-auth-flows",
    ),
    Behaviour(
        "cognito.srp",
        "Cognito",
        "USER_SRP_AUTH (what Amplify-style clients use by default): PASSWORD_VERIFIER accepts only a claim "
        "signed with the SRP-6a key of the right password, once.",
        True,
        _t(
            "test_cognito_srp",
            "test_srp_with_the_right_password_signs_in",
            "test_srp_with_a_wrong_password_is_refused",
            "test_srp_with_a_tampered_claim_is_refused",
            "test_srp_of_an_unknown_user_is_refused_without_revealing_it",
            "test_srp_needs_the_secret_hash",
        ),
        "cognito-srp",
        "Checked with pycognito's AWSSRP. The verifier is derived per sign-in from the stored password.",
    ),
    Behaviour(
        "cognito.totp",
        "Cognito",
        "AssociateSoftwareToken returns a fresh base32 secret; VerifySoftwareToken and the SOFTWARE_TOKEN_MFA "
        "challenge accept only an RFC 6238 code of the current step ±1 (EnableSoftwareTokenMFAException / "
        "CodeMismatchException), and a code only once (ExpiredCodeException 'Your software token has already "
        "been used once.').",
        True,
        _t(
            "test_cognito_mfa",
            "test_associate_software_token_returns_a_real_base32_secret",
            "test_verify_software_token_accepts_only_a_valid_code",
            "test_the_mfa_challenge_accepts_only_the_current_code_once",
        ),
        "cognito-totp",
        "Checked with pyotp.",
    ),
    Behaviour(
        "cognito.mfa-configuration",
        "Cognito",
        "MfaConfiguration is honoured: OFF never challenges; OPTIONAL challenges users who enabled TOTP; ON "
        "challenges every user, with MFA_SETUP (associate, verify, respond) for those without a token.",
        True,
        _t(
            "test_cognito_mfa",
            "test_mfa_off_never_challenges",
            "test_mfa_optional_challenges_only_users_who_enabled_it",
            "test_mfa_on_makes_every_user_set_up_totp_first",
        ),
        "cognito-mfa",
    ),
    Behaviour(
        "cognito.mfa-required-groups",
        "Cognito",
        "Members of the topology's cognito.mfa_required_groups (Owner, Admin) must use TOTP even though the pool's "
        "MFA is OPTIONAL (MFA_SETUP, then SOFTWARE_TOKEN_MFA).",
        True,
        _t("test_cognito_mfa", "test_mfa_is_required_for_owner_and_admin_groups"),
        "cognito-mfa",
        "Cognito has no per-group MFA setting: on AWS the app enforces it (403 mfa_required for those roles "
        "until TOTP is enabled; COGNITO_MFA_REQUIRED_GROUPS, tests/integration/app/test_app_mfa.py). Locally "
        "the emulator also enforces it at sign-in (--cognito-mfa-required-groups).",
    ),
    Behaviour(
        "cognito.challenge-sessions",
        "Cognito",
        "A challenge Session answers one challenge once ('Invalid session for the user, session can only be "
        "used once.').",
        True,
        _t("test_cognito_mfa", "test_the_mfa_challenge_accepts_only_the_current_code_once"),
        "cognito-mfa",
        "Sessions also expire after the client's AuthSessionValidity (3 minutes at least): implemented, not "
        "exercised by a test.",
    ),
    Behaviour(
        "cognito.issuer-jwks",
        "Cognito",
        "Tokens carry iss = the pool's issuer, whose /.well-known/jwks.json verifies them and whose "
        "openid-configuration names the same issuer; COGNITO_ISSUER / COGNITO_JWKS_URL of the env contract "
        "match it.",
        True,
        _t("test_cognito_tokens", "test_tokens_name_the_local_issuer_whose_jwks_verifies_them"),
        "cognito-issuer",
        "Locally the issuer is AWS_ENDPOINT_URL/POOL_ID (AWS: https://cognito-idp.REGION.amazonaws.com/POOL_ID).",
    ),
    Behaviour(
        "cognito.token-lifetimes",
        "Cognito",
        "Access and ID tokens live for the app client's AccessTokenValidity / IdTokenValidity "
        "(TokenValidityUnits); ExpiresIn says so.",
        True,
        _t("test_cognito_tokens", "test_token_lifetimes_follow_the_app_client"),
    ),
    Behaviour(
        "cognito.refresh-rotation",
        "Cognito",
        "With RefreshTokenRotation enabled, GetTokensFromRefreshToken returns a new refresh token; the old one "
        "still works within RetryGracePeriodSeconds and is refused after it (RefreshTokenReuseException); "
        "without rotation no new refresh token is issued.",
        True,
        _t(
            "test_cognito_tokens",
            "test_rotation_issues_a_new_refresh_token_and_keeps_the_old_one_for_the_grace_period",
            "test_after_the_grace_period_a_rotated_refresh_token_is_refused",
            "test_without_rotation_a_refresh_returns_no_new_refresh_token",
            "test_refresh_needs_the_client_secret",
        ),
        "cognito-refresh-rotation",
        "A retry within the grace period gets the same replacement token. Error messages of "
        "GetTokensFromRefreshToken other than 'Invalid Refresh Token.' are not verified against AWS.",
    ),
    Behaviour(
        "cognito.refresh-token-auth-with-rotation",
        "Cognito",
        "An app client with refresh-token rotation refuses REFRESH_TOKEN_AUTH: clients must call "
        "GetTokensFromRefreshToken.",
        True,
        _t("test_cognito_tokens", "test_rotating_clients_refuse_refresh_token_auth"),
        "cognito-refresh-rotation",
        "The exception type (InvalidParameterException here) is not verified against AWS.",
    ),
    Behaviour(
        "cognito.revoke-token",
        "Cognito",
        "RevokeToken revokes a refresh token and every token issued from it (refresh: 'Refresh Token has been "
        "revoked'; access: 'Access Token has been revoked'), needs the client secret, refuses access tokens "
        "(UnsupportedTokenTypeException) and clients with EnableTokenRevocation off "
        "(UnsupportedOperationException).",
        True,
        _t(
            "test_cognito_tokens",
            "test_revoke_token_revokes_the_refresh_token_and_its_access_tokens",
            "test_revoke_token_is_refused_when_the_client_disabled_revocation",
        ),
        "cognito-revoke",
        "Messages for a wrong ClientSecret are not verified against AWS (UnauthorizedException here).",
    ),
    Behaviour(
        "cognito.signing-key-per-pool",
        "Cognito",
        "Every user pool signs with its own RSA keys (kid per key); a token verifies only against its own pool's "
        "JWKS.",
        True,
        _t(
            "test_cognito_pool_keys",
            "test_every_pool_has_its_own_key_and_kid",
            "test_a_token_verifies_only_against_its_own_pool",
            "test_id_tokens_and_refreshed_tokens_use_the_pool_key_too",
        ),
        "cognito-pool-keys",
        "moto ships one key pair for every pool (kid 'dummy'); the emulator re-signs with a key per pool, kept "
        "in its snapshots. /_harness/cognito/signing-key?pool=ID hands the private key to tests: loopback clients with the "
        "stack's control token only (harness/emulator/control_guard.py).",
    ),
    Behaviour(
        "s3.presigned-url-signature",
        "S3",
        "A SigV4 presigned URL is accepted only with a signature over its method, path, query and signed "
        "headers (403 SignatureDoesNotMatch), virtual-host or path style.",
        True,
        _t(
            "test_s3_presigned",
            "test_presigned_get_is_accepted_and_a_tampered_signature_refused",
            "test_extending_the_expiry_or_changing_the_method_breaks_the_signature",
            "test_presigned_put_head_delete_are_verified_too",
            "test_virtual_host_style_presigned_urls_are_verified",
        ),
        "s3-presigned-url",
    ),
    Behaviour(
        "s3.presigned-url-tenant-prefix",
        "S3",
        "A presigned URL edited to point into another tenant's prefix is refused (SignatureDoesNotMatch).",
        True,
        _t(
            "test_s3_presigned",
            "test_a_presigned_url_moved_to_another_tenants_prefix_is_refused",
            "test_presigned_put_head_delete_are_verified_too",
        ),
        "s3-presigned-url",
    ),
    Behaviour(
        "s3.presigned-url-expiry",
        "S3",
        "A presigned URL is refused after X-Amz-Date + X-Amz-Expires (403 AccessDenied 'Request has expired').",
        True,
        _t("test_s3_presigned", "test_an_expired_presigned_url_is_refused"),
        "s3-presigned-url",
    ),
    Behaviour(
        "s3.presigned-url-credentials",
        "S3",
        "A presigned URL with an unknown access key (InvalidAccessKeyId), another region's credential scope "
        "(AuthorizationQueryParametersError) or Signature Version 2 (InvalidRequest: me-south-1 is SigV4-only) "
        "is refused.",
        True,
        _t("test_s3_presigned", "test_unknown_access_keys_wrong_regions_and_sigv2_are_refused"),
        "s3-presigned-url",
    ),
    Behaviour(
        "s3.post-policy-conditions",
        "S3",
        "A presigned POST is refused when a form field fails a policy condition (key eq / starts-with: another "
        "tenant's prefix) or is not covered by one ('Extra input fields'), and without a policy at all.",
        True,
        _t(
            "test_s3_presigned",
            "test_a_valid_presigned_post_uploads",
            "test_a_post_into_another_tenants_prefix_is_refused",
            "test_post_fields_outside_the_policy_and_unsigned_posts_are_refused",
        ),
        "s3-presigned-post",
    ),
    Behaviour(
        "s3.post-policy-content-length",
        "S3",
        "A presigned POST whose file is outside content-length-range is refused (400 EntityTooLarge / "
        "EntityTooSmall).",
        True,
        _t("test_s3_presigned", "test_post_content_length_range_is_enforced"),
        "s3-presigned-post",
    ),
    Behaviour(
        "s3.post-policy-signature-expiry",
        "S3",
        "A presigned POST with a tampered policy or signature (SignatureDoesNotMatch) or an expired policy "
        "(AccessDenied 'Invalid according to Policy: Policy expired.') is refused.",
        True,
        _t(
            "test_s3_presigned",
            "test_a_tampered_policy_or_signature_is_refused",
            "test_an_expired_post_policy_is_refused",
        ),
        "s3-presigned-post",
    ),
    Behaviour(
        "s3.private-bucket",
        "S3",
        "Unsigned requests to a private bucket are refused (403 AccessDenied); a public bucket policy opens "
        "reads unless Block Public Access restricts public buckets.",
        True,
        _t(
            "test_s3_presigned",
            "test_unsigned_requests_to_a_private_bucket_are_refused",
            "test_a_public_bucket_policy_allows_unsigned_reads_unless_public_access_is_blocked",
        ),
        "s3-anonymous",
    ),
    Behaviour(
        "s3.public-access-block-writes",
        "S3",
        "Under the bucket's Block Public Access settings, writes that would make data public are refused (403 "
        "AccessDenied): public ACLs (canned, x-amz-grant-* headers, ACL documents, a POST form's acl) under "
        "BlockPublicAcls, a public bucket policy under BlockPublicPolicy.",
        True,
        _t(
            "test_s3_public_access_block",
            "test_public_acls_are_refused_under_block_public_acls",
            "test_a_public_policy_is_refused_under_block_public_policy",
            "test_without_block_public_access_public_acls_are_accepted",
            "test_a_presigned_post_with_a_public_acl_is_refused",
        ),
        "s3-public-access-block",
        "Account-level Block Public Access and Object Ownership (ACLs disabled) are not emulated; the bucket's "
        "own settings, which the topology sets, are.",
    ),
    Behaviour(
        "s3.header-signed-requests",
        "S3",
        "Header-signed requests (every boto3 call) are refused with a wrong secret key (SignatureDoesNotMatch).",
        False,
        _t("test_known_gaps", "test_header_signed_s3_requests_are_not_verified"),
        note="Not verified locally: any Authorization header passes, so credentials and IAM policies are only "
        "proven on the deployed target. The harness's own boto3 calls rely on this staying permissive.",
    ),
    Behaviour(
        "s3.sigv4-header-calls-unchanged",
        "S3",
        "The harness's own header-signed calls keep working in path and virtual-host style.",
        True,
        _t("test_s3_presigned", "test_header_signed_requests_still_work_in_both_addressing_styles"),
    ),
    *DEPLOY_BEHAVIOURS,
)
"""The ledger: one row per behaviour."""

# Scenario file -> behaviour ids it depends on. Declared by hand for now; scenario files may later declare
# `relies_on:` themselves. Every actor signs in through the confidential app client and the app verifies its
# tokens against the JWKS, so every scenario depends on SECRET_HASH and the issuer.
_SIGN_IN = ("cognito.secret-hash", "cognito.issuer-jwks")
SCENARIO_DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "scenarios/ai_quota.yaml": _SIGN_IN,
    "scenarios/cross_tenant.yaml": (*_SIGN_IN, "s3.presigned-url-tenant-prefix"),
    "scenarios/donations.yaml": _SIGN_IN,
    "scenarios/health.yaml": (),
    "scenarios/invites.yaml": _SIGN_IN,
    "scenarios/media.yaml": (
        *_SIGN_IN,
        "s3.post-policy-conditions",
        "s3.post-policy-content-length",
        "s3.presigned-url-signature",
        "s3.presigned-url-tenant-prefix",
        "s3.presigned-url-expiry",
    ),
    "scenarios/orders.yaml": _SIGN_IN,
    "scenarios/rate_limit.yaml": _SIGN_IN,
    "scenarios/roles.yaml": _SIGN_IN,
    "scenarios/signup.yaml": (*_SIGN_IN, "cognito.password-errors"),
    "scenarios/tenant_deletion.yaml": (
        *_SIGN_IN,
        "s3.post-policy-conditions",
        "s3.presigned-url-tenant-prefix",
    ),
}


def scenario_dependencies() -> dict[str, tuple[str, ...]]:
    """Scenario file -> the behaviour ids it depends on."""
    return dict(SCENARIO_DEPENDENCIES)


def behaviours() -> tuple[Behaviour, ...]:
    """Every behaviour, in ledger order, with the scenarios that depend on it."""
    by_behaviour: dict[str, list[str]] = {}
    for scenario, ids in SCENARIO_DEPENDENCIES.items():
        for behaviour_id in ids:
            by_behaviour.setdefault(behaviour_id, []).append(scenario)
    return tuple(replace(row, scenarios=tuple(sorted(by_behaviour.get(row.id, ())))) for row in LEDGER)


def behaviour(behaviour_id: str) -> Behaviour:
    """One behaviour by id; an unknown id raises `HarnessError`."""
    for row in behaviours():
        if row.id == behaviour_id:
            return row
    known = ", ".join(row.id for row in LEDGER)
    raise HarnessError(
        f"the fidelity ledger has no behaviour {behaviour_id!r}",
        hint=f"known behaviours (harness/fidelity.py): {known}",
    )


def unproven_locally(ids: Iterable[str] | None = None) -> tuple[Behaviour, ...]:
    """Behaviours the local tier does not reproduce (only those among `ids` when given)."""
    rows = behaviours() if ids is None else tuple(behaviour(i) for i in dict.fromkeys(ids))
    return tuple(row for row in rows if not row.reproduced_locally)


def unproven_on(source: str, ids: Iterable[str] | None = None) -> tuple[Behaviour, ...]:
    """Behaviours not proven on a stack whose AWS endpoint is `source`: the harness's emulator
    (`unproven_locally`), or an external one (all of them: the ledger's tests ran against harness.emulator,
    its checks run only there, and what the other emulator enforces is not tested)."""
    if source == "harness":
        return unproven_locally(ids)
    if source != "external":
        raise HarnessError(f"unknown AWS source {source!r}", hint="'harness' or 'external'")
    return behaviours() if ids is None else tuple(behaviour(i) for i in dict.fromkeys(ids))


def emulator_checks() -> tuple[str, ...]:
    """The harness emulator's own checks (`--fidelity-off` names), in ledger order."""
    return tuple(dict.fromkeys(row.check for row in LEDGER if row.check))


def aws_source_summary(source: str, endpoint: str = "") -> str:
    """One line on what a stack with this AWS source proves (for `status`, `up` and the scenario summary)."""
    if source == "harness":
        return (
            f"the harness's emulator: {len(emulator_checks())} fidelity checks enforced, "
            f"{len(unproven_locally())} behaviours not reproduced (docs/fidelity.md)"
        )
    where = f" {endpoint}" if endpoint else ""
    return (
        f"external AWS endpoint{where}: the harness's {len(emulator_checks())} fidelity checks are not enforced "
        f"there and none of the ledger's {len(LEDGER)} behaviours is proven on it (docs/fidelity.md)"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """The text of docs/fidelity.md."""
    rows = behaviours()
    lines = [
        "# Fidelity ledger",
        "",
        "<!-- Generated by `python -m harness.fidelity > docs/fidelity.md` from harness/fidelity.py. "
        "Do not edit by hand. -->",
        "",
        "Each AWS behaviour the project relies on, whether the local tier (the AWS emulator, "
        "`harness.emulator`) reproduces it, the tests that prove it, and the scenarios that depend on it. A "
        "scenario that depends on a behaviour the local tier does not reproduce proves nothing about it "
        "locally: it must pass on the deployed target before promotion.",
        "",
        "Emulator checks are on by default; `python -m harness.emulator --fidelity-off CHECK[,CHECK]` (or "
        "`HARNESS_EMULATOR_FIDELITY_OFF`) switches one off for diagnosis, and `/_harness/health` reports them.",
        "",
        "| Behaviour | AWS does | Local | Check | Tested by | Scenarios |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        local = "yes" if row.reproduced_locally else "**no**"
        aws = row.aws + (f" *Note: {row.note}*" if row.note else "")
        tests = "<br>".join(f"`{test.split('::', 1)[1]}`" for test in row.tests)
        module = row.tests[0].split("::", 1)[0] if row.tests else ""
        scenarios = "<br>".join(f"`{Path(s).name}`" for s in row.scenarios) or "—"
        lines.append(
            f"| `{row.id}` | {_cell(aws)} | {local} | {f'`{row.check}`' if row.check else '—'} | "
            f"`{module}`:<br>{tests} | {scenarios} |"
        )
    unproven = [row.id for row in rows if not row.reproduced_locally]
    lines += [
        "",
        f"Not reproduced locally ({len(unproven)}): " + ", ".join(f"`{i}`" for i in unproven) + ".",
        "",
        "## On an external AWS endpoint",
        "",
        "With `[aws] endpoint` (or `harness up --aws-endpoint URL`) the stack uses an AWS-compatible emulator "
        "someone else runs (LocalStack, another moto). The harness provisions it the same way, but its own "
        f"checks ({len(emulator_checks())}: " + ", ".join(f"`{c}`" for c in emulator_checks()) + ") run only "
        "in `harness.emulator`, and the tests above ran against `harness.emulator`: on that endpoint none of "
        "these behaviours is proven. `harness status` says so on the `aws` row, and a scenario run marks every "
        "behaviour its scenarios depend on as unproven (`fidelity_unproven`).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print docs/fidelity.md, or with --check exit 1 when the file on disk differs."""
    parser = argparse.ArgumentParser(prog="python -m harness.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {DOC_PATH} is not up to date")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.check:
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run `python -m harness.fidelity > {DOC_PATH}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
