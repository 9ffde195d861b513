"""Release records: a release is an image tag plus the digests of the templates it applies, and it is *done*
only when its gate passed.

Records live beside the templates, in the base stack's artifacts bucket (`releases/<app stack>/<id>.json`, and
`latest.json` for the release the stack runs now), so CI, a laptop and the next plan all see the same verdict.
A deploy with nothing to apply is a no-op only for a release whose gate passed: after a failed gate, or one
that never ran (`--skip-gate`, a crash), the next run runs the gate again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from harness.deploy.redact import redact
from harness.errors import DeployError

PASSED, FAILED, SKIPPED, PENDING = "passed", "failed", "skipped", "pending"
MISSING = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


@dataclass(frozen=True)
class Release:
    image_tag: str
    templates: dict[str, str]  # stack name -> sha256 of its rendered template

    @property
    def id(self) -> str:
        body = json.dumps({"image": self.image_tag, "templates": self.templates}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    @classmethod
    def of(cls, image_tag: str, templates: dict[str, str]) -> Release:
        """A release from each stack's rendered template JSON (digested here)."""
        return cls(
            image_tag,
            {name: hashlib.sha256(body.encode()).hexdigest() for name, body in sorted(templates.items())},
        )


@dataclass
class ReleaseRecord:
    release: Release
    gate: str = PENDING  # passed | failed | skipped | pending (applied, the gate has not finished)
    detail: str = ""
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def done(self) -> bool:
        return self.gate == PASSED

    def as_json(self) -> dict[str, Any]:
        return {"id": self.release.id, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseRecord:
        release = data.get("release", {})
        return cls(
            Release(str(release.get("image_tag", "")), dict(release.get("templates", {}))),
            gate=str(data.get("gate", PENDING)),
            detail=str(data.get("detail", "")),
            at=str(data.get("at", "")),
        )

    def describe(self) -> str:
        what = f"release {self.release.id} (image {self.release.image_tag}, {self.at})"
        return {
            PASSED: f"{what}: gate passed",
            FAILED: f"{what}: gate FAILED — {self.detail}",
            SKIPPED: f"{what}: deployed with --skip-gate — no gate has passed for it",
            PENDING: f"{what}: applied, its gate never finished",
        }.get(self.gate, f"{what}: gate {self.gate}")


class ReleaseLedger:
    """The release records of one app stack in the artifacts bucket."""

    def __init__(self, s3: Any, bucket: str, stack: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, f"releases/{stack}/"

    def get(self, release_id: str) -> ReleaseRecord | None:
        return self._read(f"{self.prefix}{release_id}.json")

    def latest(self) -> ReleaseRecord | None:
        return self._read(f"{self.prefix}latest.json")

    def put(self, record: ReleaseRecord) -> None:
        body = json.dumps(record.as_json(), indent=2, sort_keys=True).encode()
        for key in (f"{self.prefix}{record.release.id}.json", f"{self.prefix}latest.json"):
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
            except ClientError as exc:
                raise DeployError(
                    f"could not record the release in s3://{self.bucket}/{key}: {redact(str(exc))}",
                    hint="the deploy role needs s3:PutObject on the artifacts bucket's releases/ prefix",
                ) from exc

    def _read(self, key: str) -> ReleaseRecord | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in MISSING:
                return None
            raise DeployError(f"could not read s3://{self.bucket}/{key}: {redact(str(exc))}") from exc
        try:
            return ReleaseRecord.from_json(json.loads(body))
        except (ValueError, AttributeError) as exc:
            raise DeployError(
                f"s3://{self.bucket}/{key} is not a release record ({exc})",
                hint="delete it: the next deploy then runs the gate again and writes a new one",
            ) from exc
