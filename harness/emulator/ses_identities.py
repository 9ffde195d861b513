"""SES v1 and v2, in every released request shape, see one identity state.

Two differences from AWS that foreign clients met (moto 5.2):

- **Path shapes.** botocore 1.43 moved five SES v2 operations (below). moto resolves an operation from the
  installed botocore's model, so AWS CLI v1 and older SDKs, which send the old shape, got 404 for
  `sesv2 list-email-identities`. `SesV2PathShapes` rewrites an old-shape request into the new one (query
  parameters become the JSON body) before moto sees it; the responses are the same in both shapes.
- **Identity state.** An identity is verified in the emulator as soon as it exists: SES v1 reports
  `VerificationStatus: Success` and, for a domain, DKIM `Success` with tokens. moto's v2 view of the same
  identity said `VerifiedForSendingStatus: false` and DKIM `NOT_STARTED`. `align_identities` gives the v2
  view what v1 reports (verified; a domain's DKIM signing enabled, `SUCCESS`, v1's tokens) before each SES
  request, so `sesv2 get-email-identity` and `ses get-identity-dkim-attributes` agree.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.mail import SES_SIGNING_NAMES, _signing_region, _signing_service

# (method, old path pattern) -> (method, new path template): botocore < 1.43 / AWS CLI v1 -> botocore >= 1.43
OLD_V2_SHAPES: tuple[tuple[str, re.Pattern[str], str, str], ...] = (
    ("GET", re.compile(r"^/v2/email/identities/?$"), "POST", "/v2/email/list-identities"),
    ("GET", re.compile(r"^/v2/email/configuration-sets/?$"), "POST", "/v2/email/list-configuration-sets"),
    ("GET", re.compile(r"^/v2/email/contact-lists/(?P<name>[^/]+)/contacts/?$"), "POST",
     "/v2/email/contact-lists/{name}/contacts/list"),
    ("GET", re.compile(r"^/v2/email/import-jobs/?$"), "POST", "/v2/email/import-jobs/list"),
    ("PUT", re.compile(r"^/v1/email/identities/(?P<name>[^/]+)/dkim/signing/?$"), "PUT",
     "/v2/email/identities/{name}/dkim/signing"),
)  # fmt: skip
_INT_PARAMS = frozenset({"PageSize"})


def rewrite_old_shape(environ: WSGIEnvironment) -> bool:
    """Rewrite an old-shape SES v2 request in place into the installed botocore's shape; True if it was one."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = str(environ.get("PATH_INFO", ""))
    for old_method, pattern, new_method, template in OLD_V2_SHAPES:
        match = pattern.match(path)
        if method != old_method or match is None:
            continue
        environ["REQUEST_METHOD"] = new_method
        environ["PATH_INFO"] = template.format(**match.groupdict())
        for raw in ("REQUEST_URI", "RAW_URI"):  # werkzeug's; moto resolves the operation from these
            if raw in environ:
                environ[raw] = environ["PATH_INFO"]
        if old_method == "GET":  # query parameters become the JSON body of the POST
            query = parse_qs(str(environ.get("QUERY_STRING", "")))
            body = {
                k: (int(v[-1]) if k in _INT_PARAMS and v[-1].isdigit() else v[-1]) for k, v in query.items()
            }
            payload = json.dumps(body).encode()
            environ["QUERY_STRING"] = ""
            environ["CONTENT_TYPE"] = "application/json"
            environ["CONTENT_LENGTH"] = str(len(payload))
            environ["wsgi.input"] = io.BytesIO(payload)
        return True
    return False


def align_identities(backend: Any) -> None:
    """Give every identity's v2 view the verification and DKIM state SES v1 reports for it."""
    identities = dict(backend.email_identities)
    if not identities:
        return
    dkim = backend.get_identity_dkim_attributes(list(identities))  # v1's view (creates a domain's tokens)
    for name, identity in identities.items():
        identity.verified_for_sending_status = True
        identity.verification_status = "SUCCESS"
        v1 = dkim.get(name, {})
        if identity.identity_type == "DOMAIN" and v1.get("DkimVerificationStatus") == "Success":
            attributes = identity.dkim_attributes
            attributes["SigningEnabled"] = bool(v1.get("DkimEnabled", True))
            attributes["Status"] = "SUCCESS"
            attributes.setdefault("SigningAttributesOrigin", "AWS_SES")
            attributes.setdefault("NextSigningKeyLength", "RSA_2048_BIT")
            attributes["Tokens"] = list(v1.get("DkimTokens", []))


class SesV2PathShapes:
    """Rewrites old-shape SES v2 requests and aligns the identity state before every SES request."""

    def __init__(self, app: WSGIApplication, account_id: str, default_region: str) -> None:
        self.app = app
        self.account_id = account_id
        self.default_region = default_region

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _signing_service(environ) in SES_SIGNING_NAMES:
            rewrite_old_shape(environ)
            from moto.ses.models import ses_backends

            region = _signing_region(environ) or self.default_region
            align_identities(ses_backends[self.account_id][region])
        return self.app(environ, start_response)
