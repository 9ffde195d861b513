"""S3 presigned URLs and presigned POST policies, verified the way S3 verifies them.

moto serves any request whatever its signature. `S3PresignCheck` sits in front of it and refuses, with S3's own
error codes and XML bodies:

- a SigV4 query-signed request (`X-Amz-Signature` in the query, scope service `s3`) whose signature does not
  cover this method, path, query and signed headers (`SignatureDoesNotMatch`), that has expired
  (`AccessDenied` "Request has expired"), whose parameters are malformed (`AuthorizationQueryParametersError`)
  or whose access key is unknown (`InvalidAccessKeyId`); a SigV2 query-signed one (`InvalidRequest`: SigV4-only
  regions such as me-south-1 do not accept it);
- a browser form POST (multipart/form-data without an Authorization header) without a policy (`AccessDenied`),
  with a policy that is not signed by a known key (`SignatureDoesNotMatch`), has expired, leaves a form field
  unlisted (`Extra input fields`), fails a condition (`Policy Condition failed`), or whose file is outside
  `content-length-range` (`EntityTooSmall` / `EntityTooLarge`);
- any other unsigned request moto would route to S3 (`AccessDenied`), unless the bucket's policy is public and
  its Block Public Access settings do not restrict public buckets (CORS preflights pass);
- under the bucket's Block Public Access settings (moto stores them and ignores them): with BlockPublicAcls, a
  write that sets a public ACL — `x-amz-acl: public-read|public-read-write|authenticated-read`, an
  `x-amz-grant-*` header or an `?acl` document naming the AllUsers/AuthenticatedUsers groups, a POST form's
  `acl` field; with BlockPublicPolicy, a `PUT ?policy` whose policy is public (`AccessDenied`, as S3 answers).

Requests signed in the Authorization header (what boto3 sends for every API call) pass untouched.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.fidelity import sigv4
from harness.emulator.fidelity.config import (
    S3_ANONYMOUS,
    S3_PRESIGNED_POST,
    S3_PRESIGNED_URL,
    S3_PUBLIC_ACCESS_BLOCK,
    FidelityConfig,
)
from harness.emulator.fidelity.wsgi import read_body, s3_error

MAX_EXPIRES_SECONDS = 604800  # a week
V4_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
V2_PARAMETERS = frozenset({"AWSAccessKeyId", "Signature", "Expires"})
# The only regions that still accept Signature Version 2 (every region opened after January 2014 is SigV4-only).
SIGV2_REGIONS = frozenset(
    {"us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1"}
    | {"sa-east-1"}
)
# Form fields a POST policy need not list.
UNLISTED_POST_FIELDS = frozenset({"policy", "x-amz-signature", "file", "signature", "awsaccesskeyid"})
# ACLs S3 counts as public (Block Public Access): canned ones, and grants to these two groups.
PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GROUP_URIS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
GRANT_HEADERS = tuple(
    f"x-amz-grant-{grant}" for grant in ("read", "write", "read-acp", "write-acp", "full-control")
)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


@dataclass(frozen=True)
class Refusal:
    """An S3 error response."""

    status: int
    code: str
    message: str
    details: dict[str, str | int] = field(default_factory=dict)


Clock = Callable[[], float]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _byte_string(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode())


def request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """Lower-case header name -> value, from a WSGI environ."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].lower().replace("_", "-")] = str(value)
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = str(environ["CONTENT_LENGTH"])
    return headers


def raw_path(environ: WSGIEnvironment) -> str:
    """The path as the client sent it (werkzeug keeps it in RAW_URI/REQUEST_URI; PATH_INFO is decoded)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    path = str(environ.get("PATH_INFO", "/"))
    return sigv4.uri_encode(path.encode("latin-1").decode("utf-8", "replace"), safe="/-_.~")


class _HostRequest:
    """Just enough of a request for moto's `S3Response.subdomain_based_buckets`."""

    def __init__(self, host: str) -> None:
        self.headers = {"host": host, "Host": host}
        self.url = f"http://{host}/"


def bucket_of(environ: WSGIEnvironment) -> str | None:
    """The bucket a request addresses, virtual-host or path style, decided exactly as moto decides it."""
    from moto.s3.responses import S3Response
    from moto.s3.utils import bucket_name_from_url

    host = str(environ.get("HTTP_HOST", ""))
    if S3Response.subdomain_based_buckets(_HostRequest(host)):
        return bucket_name_from_url(f"http://{host}/")
    path = str(environ.get("PATH_INFO", "/")).lstrip("/")
    return path.split("/", 1)[0] or None


class S3PresignCheck:
    """The WSGI middleware described in the module docstring."""

    def __init__(
        self,
        app: WSGIApplication,
        config: FidelityConfig,
        account_id: str,
        default_region: str,
        clock: Clock = time.time,
    ) -> None:
        self.app = app
        self.config = config
        self.account_id = account_id
        self.default_region = default_region
        self.clock = clock
        self.check_urls = config.enabled(S3_PRESIGNED_URL)
        self.check_posts = config.enabled(S3_PRESIGNED_POST)
        self.check_anonymous = config.enabled(S3_ANONYMOUS)
        self.check_public_block = config.enabled(S3_PUBLIC_ACCESS_BLOCK)
        self._dispatcher: Any = None
        self.credentials = dict(config.credentials)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is not None:
            return s3_error(
                environ, start_response, refusal.status, refusal.code, refusal.message, refusal.details
            )
        return self.app(environ, start_response)

    def refusal(self, environ: WSGIEnvironment) -> Refusal | None:
        """Why S3 would refuse this request, or None to let it through to moto."""
        query = str(environ.get("QUERY_STRING", ""))
        if self.check_urls and ("X-Amz-" in query or "Signature=" in query):
            pairs = sigv4.split_query(query)
            names = {name for name, _ in pairs}
            if names & {"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Algorithm"}:
                return self._presigned_v4(environ, pairs)
            if names >= V2_PARAMETERS:
                return self._presigned_v2(environ)
        if self._is_form_post(environ):
            return self._form_post(environ) if (self.check_posts or self.check_public_block) else None
        if self.check_anonymous and self._is_anonymous_s3(environ, query):
            return self._anonymous(environ)
        if self.check_public_block and str(environ.get("REQUEST_METHOD", "")).upper() == "PUT":
            return self._public_access_block(environ, query)
        return None

    # -- Block Public Access -----------------------------------------------------------------------

    def _public_access_block(self, environ: WSGIEnvironment, query: str) -> Refusal | None:
        """A write the bucket's Block Public Access settings forbid (signed or presigned alike)."""
        name = bucket_of(environ)
        block = getattr(self._bucket(name), "public_access_block", None) if name else None
        if block is None:
            return None
        names = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
        if "policy" in names:
            if _flag(block, "block_public_policy") and _policy_is_public(read_body(environ)):
                return Refusal(403, "AccessDenied", "Access Denied")
            return None
        if not _flag(block, "block_public_acls"):
            return None
        headers = request_headers(environ)
        if _public_acl_headers(headers):
            return Refusal(403, "AccessDenied", "Access Denied")
        if "acl" in names and any(uri.encode() in read_body(environ) for uri in PUBLIC_GROUP_URIS):
            return Refusal(403, "AccessDenied", "Access Denied")
        return None

    # -- unsigned requests -------------------------------------------------------------------------

    def _is_anonymous_s3(self, environ: WSGIEnvironment, query: str) -> bool:
        if environ.get("HTTP_AUTHORIZATION") or environ.get("HTTP_X_AMZ_TARGET"):
            return False
        if str(environ.get("REQUEST_METHOD", "")).upper() == "OPTIONS":
            return False  # CORS preflight: S3 answers it without credentials
        if "X-Amz-Credential" in query or "AWSAccessKeyId" in query:
            return False
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(("/moto-api", "/latest/", "/favicon.ico")):
            return False
        if self._dispatcher is None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

            self._dispatcher = DomainDispatcherApplication(create_backend_app)
        host = self._dispatcher.infer_service_region_host(environ, path)
        return host is None or (str(host).startswith("s3.") and "s3-control" not in str(host))

    def _anonymous(self, environ: WSGIEnvironment) -> Refusal | None:
        name = bucket_of(environ)
        bucket = self._bucket(name) if name else None
        if bucket is not None and _publicly_readable(bucket):
            return None
        return Refusal(403, "AccessDenied", "Access Denied")

    # -- query-signed URLs -------------------------------------------------------------------------

    def _presigned_v4(self, environ: WSGIEnvironment, pairs: list[tuple[str, str]]) -> Refusal | None:
        params = dict(pairs)
        scope = sigv4.CredentialScope.parse(params.get("X-Amz-Credential", ""))
        if scope is not None and scope.service != "s3":
            return None  # another service's presigned request: not S3's to judge
        if any(name not in params for name in V4_PARAMETERS):
            return _query_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
            )
        if params["X-Amz-Algorithm"] != sigv4.ALGORITHM:
            return _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
        if scope is None:
            return _query_error(
                "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "
                '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
            )
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return _query_error("X-Amz-Expires should be a number")
        if expires < 0:
            return _query_error("X-Amz-Expires must be non-negative")
        if expires > MAX_EXPIRES_SECONDS:
            return _query_error(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_SECONDS}"
            )
        amz_date = params["X-Amz-Date"]
        try:
            signed_at = datetime.strptime(amz_date, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            return _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
        if scope.date != amz_date[:8]:
            return _query_error("Invalid credential date. Date is not the same as X-Amz-Date.")
        region = self._bucket_region(environ)
        if region is not None and scope.region != region:
            return Refusal(
                400,
                "AuthorizationQueryParametersError",
                f"Error parsing the X-Amz-Credential parameter; the region '{scope.region}' is wrong; "
                f"expecting '{region}'",
                {"Region": region},
            )
        secret = self._secret(scope.access_key_id)
        if secret is None:
            return _unknown_key(scope.access_key_id)
        signed_headers = [h for h in params["X-Amz-SignedHeaders"].lower().split(";") if h]
        canonical = sigv4.canonical_request(
            str(environ.get("REQUEST_METHOD", "GET")).upper(),
            sigv4.canonical_path(raw_path(environ)),
            sigv4.canonical_query(pairs),
            request_headers(environ),
            signed_headers,
            params.get("X-Amz-Content-Sha256", sigv4.UNSIGNED_PAYLOAD),
        )
        to_sign = sigv4.string_to_sign(amz_date, scope.scope, canonical)
        provided = params["X-Amz-Signature"]
        if not _same(sigv4.signature(secret, scope, to_sign), provided):
            return Refusal(
                403,
                "SignatureDoesNotMatch",
                SIGNATURE_MISMATCH,
                {
                    "AWSAccessKeyId": scope.access_key_id,
                    "StringToSign": to_sign,
                    "SignatureProvided": provided,
                    "StringToSignBytes": _byte_string(to_sign),
                    "CanonicalRequest": canonical,
                    "CanonicalRequestBytes": _byte_string(canonical),
                },
            )
        now = self.clock()
        if now > signed_at + expires:
            return Refusal(
                403,
                "AccessDenied",
                "Request has expired",
                {"X-Amz-Expires": expires, "Expires": _iso(signed_at + expires), "ServerTime": _iso(now)},
            )
        return None

    def _presigned_v2(self, environ: WSGIEnvironment) -> Refusal | None:
        region = self._bucket_region(environ) or self.default_region
        if region in SIGV2_REGIONS:
            return None
        return Refusal(
            400,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        )

    # -- browser form POST -------------------------------------------------------------------------

    @staticmethod
    def _is_form_post(environ: WSGIEnvironment) -> bool:
        return (
            str(environ.get("REQUEST_METHOD", "")).upper() == "POST"
            and str(environ.get("CONTENT_TYPE", "")).lower().startswith("multipart/form-data")
            and not environ.get("HTTP_AUTHORIZATION")
            and not environ.get("HTTP_X_AMZ_TARGET")
            and not str(environ.get("PATH_INFO", "")).startswith("/moto-api")
        )

    def _form_post(self, environ: WSGIEnvironment) -> Refusal | None:
        from werkzeug.formparser import parse_form_data

        body = read_body(environ)
        form_environ = {
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        _, form, files = parse_form_data(form_environ)
        fields: dict[str, str] = {}
        for name, value in form.items(multi=True):
            fields.setdefault(name.lower(), value)
        upload = files.get("file")
        if upload is not None:
            size = len(upload.read())
        elif "file" in fields:
            size = len(fields["file"].encode())
        else:
            return Refusal(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        refusal = self._post_policy(environ, fields, size) if self.check_posts else None
        if (
            refusal is None
            and self.check_public_block
            and fields.get("acl", "").lower() in PUBLIC_CANNED_ACLS
        ):
            bucket_name = bucket_of(environ)
            bucket = self._bucket(bucket_name) if bucket_name else None
            block = getattr(bucket, "public_access_block", None)
            if block is not None and _flag(block, "block_public_acls"):
                return Refusal(403, "AccessDenied", "Access Denied")
        return refusal

    def _post_policy(self, environ: WSGIEnvironment, fields: dict[str, str], size: int) -> Refusal | None:
        policy_b64 = fields.get("policy")
        if "awsaccesskeyid" in fields and "signature" in fields:
            return self._presigned_v2(environ)
        if not policy_b64:
            return Refusal(403, "AccessDenied", "Access Denied")
        if fields.get("x-amz-algorithm") != sigv4.ALGORITHM:
            return Refusal(
                400, "InvalidArgument", "POST form fields must include x-amz-algorithm = AWS4-HMAC-SHA256"
            )
        scope = sigv4.CredentialScope.parse(fields.get("x-amz-credential", ""))
        if scope is None:
            return Refusal(
                400, "InvalidArgument", "Invalid according to Policy: x-amz-credential is malformed"
            )
        secret = self._secret(scope.access_key_id)
        if secret is None:
            return _unknown_key(scope.access_key_id)
        provided = fields.get("x-amz-signature", "")
        if not _same(sigv4.signature(secret, scope, policy_b64), provided):
            return Refusal(
                403,
                "SignatureDoesNotMatch",
                SIGNATURE_MISMATCH,
                {
                    "AWSAccessKeyId": scope.access_key_id,
                    "StringToSign": policy_b64,
                    "SignatureProvided": provided,
                    "StringToSignBytes": _byte_string(policy_b64),
                },
            )
        try:
            policy = json.loads(base64.b64decode(policy_b64, validate=True))
            expiration = datetime.strptime(
                str(policy["expiration"]).replace(".000Z", "Z"), "%Y-%m-%dT%H:%M:%SZ"
            ).replace(tzinfo=UTC)
            conditions = list(policy.get("conditions") or [])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return Refusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
        if self.clock() > expiration.timestamp():
            return Refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        bucket = bucket_of(environ) or ""
        return _conditions_refusal(conditions, fields, bucket, size)

    # -- lookups ------------------------------------------------------------------------------------

    def _secret(self, access_key_id: str) -> str | None:
        secret = self.credentials.get(access_key_id)
        if secret is not None:
            return secret
        try:
            from moto.iam.models import iam_backends

            for backend in dict.values(iam_backends.get(self.account_id) or {}):
                for user in backend.users.values():
                    for key in user.access_keys:
                        if key.access_key_id == access_key_id and key.status == "Active":
                            return str(key.secret_access_key)
        except Exception:  # no IAM state at all is the common case
            return None
        return None

    def _bucket(self, name: str) -> Any:
        """moto's bucket of that name in this account, or None."""
        try:
            from moto.s3.models import s3_backends

            backends: Any = s3_backends
            partitions: Mapping[str, Any] = dict.get(backends, self.account_id) or {}
            for backend in dict.values(dict(partitions)):
                bucket = backend.buckets.get(name)
                if bucket is not None:
                    return bucket
        except Exception:  # no S3 state yet
            return None
        return None

    def _bucket_region(self, environ: WSGIEnvironment) -> str | None:
        name = bucket_of(environ)
        bucket = self._bucket(name) if name else None
        return str(bucket.region_name) if bucket is not None else None


def _publicly_readable(bucket: Any) -> bool:
    """A bucket policy granting the world access, not neutralised by Block Public Access (ACLs are ignored:
    new buckets enforce bucket-owner object ownership, which disables them)."""
    from moto.s3.utils import bucket_policy_is_public

    block = getattr(bucket, "public_access_block", None)
    if block is not None and str(getattr(block, "restrict_public_buckets", "")).lower() == "true":
        return False
    policy = getattr(bucket, "policy", None)
    if not policy:
        return False
    try:
        return bool(bucket_policy_is_public(policy))
    except Exception:  # an unreadable policy grants nothing
        return False


def _flag(block: Any, name: str) -> bool:
    return str(getattr(block, name, "")).lower() == "true"


def _public_acl_headers(headers: Mapping[str, str]) -> bool:
    if headers.get("x-amz-acl", "").strip().lower() in PUBLIC_CANNED_ACLS:
        return True
    return any(uri in headers.get(grant, "") for grant in GRANT_HEADERS for uri in PUBLIC_GROUP_URIS)


def _policy_is_public(policy: bytes) -> bool:
    from moto.s3.utils import bucket_policy_is_public

    try:
        return bool(bucket_policy_is_public(policy))
    except Exception:  # unreadable: S3 refuses it for its own reason (MalformedPolicy), moto says which
        return False


def _same(expected: str, provided: str) -> bool:
    import hmac

    return hmac.compare_digest(expected.encode(), provided.strip().lower().encode())


def _query_error(message: str) -> Refusal:
    return Refusal(400, "AuthorizationQueryParametersError", message)


def _unknown_key(access_key_id: str) -> Refusal:
    return Refusal(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        {"AWSAccessKeyId": access_key_id},
    )


def _condition_failed(condition: list[Any]) -> Refusal:
    return Refusal(
        403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
    )


def _conditions_refusal(
    conditions: list[Any], fields: dict[str, str], bucket: str, size: int
) -> Refusal | None:
    """Check every policy condition, and that every form field is covered by one (S3's order)."""
    covered: set[str] = set()
    checks: list[tuple[list[Any], str, str, str]] = []  # (as shown, operator, field, expected)
    length_range: tuple[int, int] | None = None
    for condition in conditions:
        if isinstance(condition, dict):
            for name, expected in condition.items():
                covered.add(str(name).lower())
                checks.append((["eq", f"${name}", expected], "eq", str(name).lower(), str(expected)))
            continue
        if not isinstance(condition, list) or not condition:
            return Refusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition.")
        operator = str(condition[0]).lower()
        if operator == "content-length-range" and len(condition) == 3:
            length_range = (int(condition[1]), int(condition[2]))
            continue
        if (
            operator not in ("eq", "starts-with")
            or len(condition) != 3
            or not str(condition[1]).startswith("$")
        ):
            return Refusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition.")
        name = str(condition[1])[1:].lower()
        covered.add(name)
        checks.append((condition, operator, name, str(condition[2])))
    extra = [
        name
        for name in fields
        if name not in covered and name not in UNLISTED_POST_FIELDS and not name.startswith("x-ignore-")
    ]
    if extra:
        return Refusal(
            403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
        )
    for shown, operator, name, expected in checks:
        value = bucket if name == "bucket" else fields.get(name)
        passes = value is not None and (value == expected if operator == "eq" else value.startswith(expected))
        if not passes:
            return _condition_failed(shown)
    if length_range is not None:
        low, high = length_range
        if size < low:
            return Refusal(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                {"ProposedSize": size, "MinSizeAllowed": low},
            )
        if size > high:
            return Refusal(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                {"ProposedSize": size, "MaxSizeAllowed": high},
            )
    return None
