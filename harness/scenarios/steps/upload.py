"""`upload:`: a browser-style form POST of a file to a presigned POST (url + fields from the API)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from harness.scenarios import registry
from harness.scenarios.execute import StepContext, finish
from harness.scenarios.fields import (
    HttpExpect,
    SpecModel,
    StepModel,
)
from harness.scenarios.matchers import show
from harness.scenarios.report import StepFailure
from harness.scenarios.steps._http import HTTP_SAVE_ROOTS, http_attempt


class UploadFile(SpecModel):
    content: str
    filename: str = "upload.bin"
    content_type: str | None = None


class UploadSpec(SpecModel):
    url: str
    fields: Any = Field(description="the form fields of the presigned POST (a mapping or a ${variable})")
    file: UploadFile
    field_name: str = "file"


class UploadStep(StepModel):
    """A browser-style form POST of a file to a presigned POST (url + fields from the API)."""

    upload: UploadSpec
    expect: HttpExpect = HttpExpect()


def run(context: StepContext, step: UploadStep) -> dict[str, Any]:
    spec = step.upload
    url = context.text(spec.url)
    fields = context.value(spec.fields)
    if not isinstance(fields, dict):
        raise StepFailure([f"upload.fields: expected a mapping of form fields, got {show(fields)}"])
    form = {str(k): str(v) for k, v in fields.items()}
    content = context.text(spec.file.content).encode()
    content_type = spec.file.content_type or form.get("Content-Type") or "application/octet-stream"
    files = {spec.field_name: (context.text(spec.file.filename), content, content_type)}
    exchange = context.api.send("POST", url, data=form, files=files)
    return finish(http_attempt(context, step.expect, exchange), 1, 0.0)


KIND = registry.register(registry.StepKind("upload", UploadStep, run, save_roots=HTTP_SAVE_ROOTS))
