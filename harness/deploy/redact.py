"""Keep secret values out of everything the deploy prints: messages from AWS are scrubbed before display."""

from __future__ import annotations

import re

# A password inside a URL (scheme://user:password@host) and anything that looks like a dynamic reference value.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<secret>[^@\s]+)(?P<tail>@)", re.I)
_SECRET_FIELDS = re.compile(
    r'(?P<head>"?(SecretString|password|Password|ClientSecret)"?\s*[:=]\s*"?)(?P<secret>[^",}\s]+)'
)


def redact(text: str, known: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, secret-looking fields and every `known` value replaced by `***`."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + "***" + m.group("tail"), text)
    text = _SECRET_FIELDS.sub(lambda m: m.group("head") + "***", text)
    for value in known:
        if len(value) >= 6:
            text = text.replace(value, "***")
    return text
