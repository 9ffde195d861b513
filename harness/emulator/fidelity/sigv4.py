"""AWS Signature Version 4 as S3 verifies it: canonical request, string to sign, signing key."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CredentialScope:
    """`AKID/20260101/me-south-1/s3/aws4_request`, parsed."""

    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @classmethod
    def parse(cls, credential: str) -> CredentialScope | None:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
            return None
        if not re.fullmatch(r"\d{8}", parts[1]):
            return None
        return cls(parts[0], parts[1], parts[2], parts[3])


def uri_encode(text: str, safe: str = "-_.~") -> str:
    """AWS's UriEncode: every byte outside A-Z a-z 0-9 - _ . ~ (and `safe`) as %XX, upper case."""
    return quote(text, safe=safe)


def canonical_path(raw_path: str) -> str:
    """S3's canonical URI: the path as the client encoded it (decoded once, encoded once, never normalised)."""
    return uri_encode(unquote(raw_path), safe="/-_.~") or "/"


def split_query(raw_query: str) -> list[tuple[str, str]]:
    """The query string's parameters, decoded, in order (`+` is a literal plus in SigV4, not a space)."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]], exclude: str = "X-Amz-Signature") -> str:
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs if k != exclude)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_header_value(value: str) -> str:
    return _SPACES.sub(" ", value.strip())


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    """`headers`: lower-case name -> raw value for at least the signed ones (missing ones count as empty)."""
    lines = "".join(f"{name}:{canonical_header_value(headers.get(name, ''))}\n" for name in signed_headers)
    return "\n".join([method, path, query, lines, ";".join(signed_headers), payload_hash])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_access_key: str, scope: CredentialScope) -> bytes:
    key = ("AWS4" + secret_access_key).encode()
    for part in (scope.date, scope.region, scope.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret_access_key: str, scope: CredentialScope, to_sign: str) -> str:
    return hmac.new(signing_key(secret_access_key, scope), to_sign.encode(), hashlib.sha256).hexdigest()
