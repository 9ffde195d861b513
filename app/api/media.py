"""Media: presigned S3 upload/download for keys under `{tenant_id}/` only; the bucket is never public."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.aws import s3_client
from app.errors import ERROR_RESPONSES, Conflict, Forbidden, NotFound
from app.models import MediaObject
from app.settings import get_settings
from app.tenancy import MemberContext, TenantContext

router = APIRouter(prefix="/media", tags=["media"], responses=ERROR_RESPONSES)

UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class MediaCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(
        default="application/octet-stream", max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+$"
    )
    key: str | None = Field(
        default=None, max_length=1024, description="Full key; must start with `{tenant_id}/`"
    )


class PresignedUpload(BaseModel):
    """A browser form POST: send `fields` plus the file (as `file`, last) to `url`."""

    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_in: int


class MediaOut(BaseModel):
    id: uuid.UUID
    key: str
    filename: str
    content_type: str
    created_at: datetime


class MediaUpload(MediaOut):
    upload: PresignedUpload


class MediaDownload(MediaOut):
    download_url: str
    expires_in: int


def tenant_prefix(tenant_id: uuid.UUID) -> str:
    return f"{tenant_id}/"


def key_belongs_to(key: str, tenant_id: uuid.UUID) -> bool:
    """True for `{tenant_id}/…` keys without `..`/empty segments (nothing that could escape the prefix)."""
    prefix = tenant_prefix(tenant_id)
    if not key.startswith(prefix) or len(key) == len(prefix):
        return False
    return all(segment not in ("", ".", "..") for segment in key[len(prefix) :].split("/"))


def safe_filename(filename: str) -> str:
    return UNSAFE_FILENAME_CHARS.sub("_", filename.rsplit("/", 1)[-1]).strip("._") or "file"


def _out(media: MediaObject) -> MediaOut:
    return MediaOut(
        id=media.id,
        key=media.key,
        filename=media.filename,
        content_type=media.content_type,
        created_at=media.created_at,
    )


def _download(media: MediaObject) -> MediaDownload:
    settings = get_settings()
    url = s3_client().generate_presigned_url(
        "get_object",
        Params={"Bucket": settings.s3_bucket, "Key": media.key},
        ExpiresIn=settings.presign_expiry_seconds,
    )
    return MediaDownload(
        **_out(media).model_dump(), download_url=url, expires_in=settings.presign_expiry_seconds
    )


def _check_key(context: TenantContext, key: str) -> None:
    if not key_belongs_to(key, context.tenant_id):
        raise Forbidden(f"keys of this tenant start with {tenant_prefix(context.tenant_id)!r}")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MediaUpload)
async def create_upload(context: MemberContext, body: Annotated[MediaCreate, Body()]) -> MediaUpload:
    settings = get_settings()
    filename = safe_filename(body.filename)
    key = body.key or f"{tenant_prefix(context.tenant_id)}{uuid.uuid4()}/{filename}"
    _check_key(context, key)
    media = MediaObject(
        id=uuid.uuid4(),
        tenant_id=context.tenant_id,
        key=key,
        filename=filename,
        content_type=body.content_type,
        uploaded_by=context.principal.sub,
    )
    context.db.add(media)
    try:
        await context.db.flush()
    except IntegrityError:
        raise Conflict("an object with this key exists") from None
    await context.db.refresh(media)
    post = s3_client().generate_presigned_post(
        settings.s3_bucket,
        key,
        Fields={"Content-Type": body.content_type},
        Conditions=[
            {"Content-Type": body.content_type},
            ["content-length-range", 1, settings.max_upload_bytes],
        ],
        ExpiresIn=settings.presign_expiry_seconds,
    )
    upload = PresignedUpload(
        url=post["url"],
        fields=post["fields"],
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.presign_expiry_seconds,
    )
    return MediaUpload(**_out(media).model_dump(), upload=upload)


@router.get("", response_model=list[MediaOut])
async def list_media(context: MemberContext) -> list[MediaOut]:
    rows = await context.db.scalars(select(MediaObject).order_by(MediaObject.created_at.desc()).limit(200))
    return [_out(m) for m in rows]


@router.get("/download", response_model=MediaDownload)
async def download_by_key(
    context: MemberContext, key: Annotated[str, Query(max_length=1024)]
) -> MediaDownload:
    """A presigned GET for a key of this tenant; another tenant's key is refused (403)."""
    _check_key(context, key)
    media = await context.db.scalar(select(MediaObject).where(MediaObject.key == key))
    if media is None:
        raise NotFound("no such object")
    return _download(media)


@router.get("/{media_id}", response_model=MediaDownload)
async def download(context: MemberContext, media_id: uuid.UUID) -> MediaDownload:
    media = await context.db.get(MediaObject, media_id)
    if media is None:
        raise NotFound("no such object")
    return _download(media)
