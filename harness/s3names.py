"""AWS's naming rules for S3 general purpose buckets, so a name AWS refuses fails when the topology loads.

The rules are AWS's "General purpose bucket naming rules":
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
(3-63 characters; lowercase letters, digits, '.' and '-'; a letter or digit at both ends; no two adjacent
periods; not an IP address; none of the reserved prefixes and suffixes below). The emulator accepts names
AWS refuses, so only this check keeps a local-only name from failing at the first deploy.
"""

from __future__ import annotations

import re

# Reserved by AWS (same page): prefixes for internationalised-domain, S3-internal and documentation names;
# suffixes of access point aliases, Object Lambda aliases, multi-region access points, directory buckets
# (S3 Express One Zone) and table buckets.
RESERVED_PREFIXES = ("xn--", "sthree-", "sthree-configurator", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

_CHARS = re.compile(r"[a-z0-9.-]+")
_IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def bucket_name_problem(name: str) -> str | None:
    """Why AWS would refuse `name` as a general purpose bucket name, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return f"must be 3 to 63 characters long (it has {len(name)})"
    if not _CHARS.fullmatch(name):
        bad = sorted({c for c in name if not _CHARS.fullmatch(c)})
        return f"may hold only lowercase letters, digits, '.' and '-' (not {', '.join(map(repr, bad))})"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must begin and end with a lowercase letter or a digit"
    if ".." in name:
        return "must not have two adjacent periods"
    if _IP_ADDRESS.fullmatch(name):
        return "must not be formatted as an IP address"
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"must not start with {prefix!r} (a prefix AWS reserves)"
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"must not end with {suffix!r} (a suffix AWS reserves)"
    return None
