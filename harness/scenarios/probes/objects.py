"""The object-store probe: objects under a tenant's prefix, read with the S3 API.

The S3 API is the interface on both targets: locally the client points at the emulator, on a deployed stack at
AWS with the caller's credentials. Keys are checked against the topology's `s3.tenant_prefix`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    content_type: str | None
    size: int


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    last_modified: datetime
    delete_marker: bool
    version_id: str | None = None
    is_latest: bool = False
    size: int | None = None  # None on delete markers
    content_type: str | None = None  # filled by `versions(..., with_content_type=True)`

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "version_id": self.version_id,
            "last_modified": self.last_modified.isoformat(),
            "delete_marker": self.delete_marker,
            "is_latest": self.is_latest,
            "size": self.size,
            "content_type": self.content_type,
        }


class ObjectStore:
    """One bucket, seen through the S3 API."""

    def __init__(self, s3: Any, bucket: str, tenant_prefix_template: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.template = tenant_prefix_template
        head, _, tail = tenant_prefix_template.partition("{tenant_id}")
        self._tenant_key = re.compile(rf"^{re.escape(head)}(?P<tenant>{UUID_PATTERN}){re.escape(tail)}.")

    def tenant_prefix(self, tenant_id: str) -> str:
        return self.template.replace("{tenant_id}", tenant_id)

    def tenant_of(self, key: str) -> str | None:
        """The tenant id whose prefix `key` lies under, or None for a key outside every tenant prefix."""
        match = self._tenant_key.match(key)
        return match.group("tenant") if match else None

    def get(self, key: str) -> StoredObject | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body = response["Body"].read()
        return StoredObject(key, body, response.get("ContentType"), len(body))

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def versions_since(self, since: datetime, prefix: str = "") -> list[ObjectVersion]:
        """Every object version and delete marker written at or after `since` (the bucket is versioned)."""
        found: list[ObjectVersion] = []
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
                for item in page.get(kind, []):
                    if item["LastModified"] >= since:
                        found.append(ObjectVersion(item["Key"], item["LastModified"], marker))
        return found

    def versions(
        self, prefix: str, *, limit: int = 1000, with_content_type: bool = True
    ) -> list[ObjectVersion]:
        """Every version and delete marker under `prefix` (up to `limit`), by key, newest first per key; the
        content type of each version comes from a HEAD of that version."""
        found: list[ObjectVersion] = []
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
                for item in page.get(kind, []):
                    content_type = None
                    if with_content_type and not marker:
                        head = self.s3.head_object(
                            Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"]
                        )
                        content_type = head.get("ContentType")
                    found.append(
                        ObjectVersion(
                            item["Key"],
                            item["LastModified"],
                            marker,
                            item.get("VersionId"),
                            bool(item.get("IsLatest")),
                            None if marker else int(item.get("Size", 0)),
                            content_type,
                        )
                    )
                    if len(found) >= limit:
                        break
            if len(found) >= limit:
                break
        # per key: the latest first, then newest first (S3 lists versions newest first; ties keep that order)
        found.sort(key=lambda v: (v.key, not v.is_latest, -v.last_modified.timestamp()))
        return found

    def presigned_get(self, key: str, version_id: str | None, seconds: int) -> str:
        """A short-lived presigned GET URL of one version of `key`."""
        params = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null":
            params["VersionId"] = version_id
        return str(self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version under `prefix` (cleanup of a run's tenant); returns how many."""
        if not prefix:
            raise ValueError("refusing to delete a whole bucket")
        deleted = 0
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            entries = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for kind in ("Versions", "DeleteMarkers")
                for item in page.get(kind, [])
            ]
            for start in range(0, len(entries), 1000):
                chunk = entries[start : start + 1000]
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
                deleted += len(chunk)
        return deleted


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
