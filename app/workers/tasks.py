# mypy: disable-error-code="untyped-decorator"
"""Worker tasks. Every task takes `tenant_id` and does its database work under that tenant's RLS context.

Emails are delivered at most once per business event: the row (order, donation, invite) is locked, its
`*_sent_at` checked, the email sent and the row stamped in one transaction — with the outbox intent's
`done_at` (app/outbox.py), so the relay stops queueing it exactly when the email is recorded as sent. A redelivered task
(acks_late + reject_on_worker_lost: a killed worker's task runs again) finds the stamp and sends nothing.
Around the send, Redis (keys.email_delivery) holds what the database cannot yet: `maybe` from just before
the SES call until the stamp commits, `sent:<message id>` when SES accepted the email and the stamp's commit
then failed (the database went away). The next attempt stamps the row from `sent:` without sending again;
after `maybe` (SES did not answer, or the worker died mid-send) it sends again tagged
`possible_duplicate=true`, because SES offers no idempotency token: that resend may be a second copy, and
it says so. An untagged second copy needs two faults at once (Redis losing the record as well).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from celery import Task
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app import emails, invite_tokens, keys, outbox
from app.ai.quota import QUOTA_KEY_TTL_SECONDS, Usage, current_period
from app.aws import s3_client
from app.db import tenant_transaction_sync
from app.models import AiUsage, Donation, Invite, Order, Tenant
from app.settings import get_settings
from app.workers.celery_app import celery_app

logger = logging.getLogger("app.workers")

EMAIL_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (emails.TransientEmailError, OperationalError, redis.ConnectionError),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
}
# How long the worker remembers an email the database could not record (keys.email_delivery): longer than
# any outage the outbox relay waits out before it queues the intent again.
DELIVERY_MEMORY_SECONDS = 7 * 24 * 3600
SENT = "sent:"
MAYBE_SENT = "maybe"


@lru_cache(maxsize=1)
def worker_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, decode_responses=True, socket_timeout=5)


def _remember(idempotency_key: str, value: str) -> None:
    """Record what the database could not; never raises (the caller is already failing)."""
    try:
        worker_redis().set(keys.email_delivery(idempotency_key), value, ex=DELIVERY_MEMORY_SECONDS)
    except redis.RedisError as exc:
        logger.warning("could not record the delivery state of %s (%s)", idempotency_key, exc)


def _forget(idempotency_key: str) -> None:
    """The row is stamped (or nothing was sent): the record is no longer needed. Never raises."""
    try:
        worker_redis().delete(keys.email_delivery(idempotency_key))
    except redis.RedisError as exc:  # it expires on its own
        logger.info("could not drop the delivery record of %s (%s)", idempotency_key, exc)


def _deliver_once(
    session: Session,
    row: Order | Donation | Invite | None,
    *,
    sent_at: str,
    message_id: str,
    render: Callable[[Tenant], emails.Email],
    accepted: list[tuple[str, str]],
) -> str | None:
    """Send the row's email unless it was already sent; returns the SES message id.

    Once SES accepted the email, (idempotency key, message id) is appended to `accepted`: if the transaction
    that stamps the row then fails (the database went away), the caller records it in Redis, and the next
    attempt stamps the row from there instead of sending again.
    """
    if row is None:
        logger.warning("nothing to send: the row is not visible in this tenant (deleted, or wrong tenant)")
        return None
    if getattr(row, sent_at) is not None:
        logger.info("already sent (%s): not sending again", getattr(row, message_id))
        return str(getattr(row, message_id))
    tenant = session.get(Tenant, row.tenant_id)
    assert tenant is not None  # the row references it and both are visible under the same tenant
    email = render(tenant)
    known: str | None = worker_redis().get(keys.email_delivery(email.idempotency_key))  # type: ignore[assignment]
    if known is not None and known.startswith(SENT):
        ses_message_id = known.removeprefix(SENT)
        logger.warning(
            "%s was sent (%s) before the database could record it: recording it, not sending again",
            email.idempotency_key,
            ses_message_id,
        )
    else:
        # Recorded before the send: if this process dies while SES has the request (or before the stamp
        # commits), the next attempt knows it may be a second copy and says so.
        worker_redis().set(keys.email_delivery(email.idempotency_key), MAYBE_SENT, ex=DELIVERY_MEMORY_SECONDS)
        try:
            ses_message_id = emails.send(email, possible_duplicate=known == MAYBE_SENT)
        except emails.AmbiguousSendError:
            logger.warning("SES did not answer for %s (it may have accepted it)", email.idempotency_key)
            raise
        except emails.EmailError:  # refused, or never reached SES: nothing was sent
            if known is None:
                _forget(email.idempotency_key)
            raise
        accepted.append((email.idempotency_key, ses_message_id))
    setattr(row, sent_at, datetime.now(UTC))
    setattr(row, message_id, ses_message_id)
    return ses_message_id


def _locked(session: Session, model: type[Order] | type[Donation] | type[Invite], row_id: str) -> Any:
    # FOR UPDATE: a concurrent duplicate of this task waits here, then sees the stamp.
    return session.scalar(select(model).where(model.id == uuid.UUID(row_id)).with_for_update())


def _email_task(
    task: Task,
    tenant_id: str,
    model: type[Order] | type[Donation] | type[Invite],
    row_id: str,
    *,
    sent_at: str,
    message_id: str,
    render: Callable[[Any, Tenant], emails.Email],
    skip: Callable[[Any], str | None] = lambda row: None,
) -> str | None:
    """Lock the row, stamp its outbox intent done, send its email once, stamp the row — one transaction."""
    accepted: list[tuple[str, str]] = []
    try:
        with tenant_transaction_sync(uuid.UUID(tenant_id)) as session:
            row = _locked(session, model, row_id)
            outbox.mark_done(session, task.name, row_id)
            if row is not None and (reason := skip(row)) is not None:
                logger.info("%s %s: not sending (%s)", model.__tablename__, row_id, reason)
                return None
            result = _deliver_once(
                session,
                row,
                sent_at=sent_at,
                message_id=message_id,
                render=lambda tenant: render(row, tenant),
                accepted=accepted,
            )
    except Exception:
        for idempotency_key, ses_message_id in accepted:  # SES has it; the stamp did not commit
            _remember(idempotency_key, SENT + ses_message_id)
        raise
    for idempotency_key, _ in accepted:  # stamped: the row is the record now
        _forget(idempotency_key)
    return result


@celery_app.task(name="emails.order_confirmation", **EMAIL_TASK_OPTIONS)
def send_order_confirmation(self: Task, tenant_id: str, order_id: str) -> str | None:
    return _email_task(
        self,
        tenant_id,
        Order,
        order_id,
        sent_at="confirmation_sent_at",
        message_id="confirmation_message_id",
        render=lambda order, tenant: emails.order_confirmation(
            tenant_id=tenant_id,
            tenant_name=tenant.name,
            order_id=order_id,
            to=order.buyer_email,
            items=order.items,
            total_cents=order.total_cents,
            currency=order.currency,
        ),
    )


@celery_app.task(name="emails.donation_receipt", **EMAIL_TASK_OPTIONS)
def send_donation_receipt(self: Task, tenant_id: str, donation_id: str) -> str | None:
    return _email_task(
        self,
        tenant_id,
        Donation,
        donation_id,
        sent_at="receipt_sent_at",
        message_id="receipt_message_id",
        render=lambda donation, tenant: emails.donation_receipt(
            tenant_id=tenant_id,
            tenant_name=tenant.name,
            donation_id=donation_id,
            to=donation.donor_email,
            amount_cents=donation.amount_cents,
            currency=donation.currency,
        ),
    )


@celery_app.task(name="emails.invite", **EMAIL_TASK_OPTIONS)
def send_invite(self: Task, tenant_id: str, invite_id: str) -> str | None:
    return _email_task(
        self,
        tenant_id,
        Invite,
        invite_id,
        sent_at="sent_at",
        message_id="message_id",
        render=lambda invite, tenant: emails.invite(
            tenant_id=tenant_id,
            tenant_name=tenant.name,
            invite_id=invite_id,
            to=invite.email,
            role=invite.role,
            token=invite_tokens.mint(tenant_id=tenant.id, invite_id=invite.id, expires_at=invite.expires_at),
            api_url=get_settings().api_url,
        ),
        skip=lambda invite: None if invite.status == "pending" else f"the invite is {invite.status}",
    )


def rollup_usage(tenant_id: uuid.UUID, period: str, usage: Usage) -> None:
    """Store the counters as the period's totals (a snapshot: running it twice changes nothing).

    GREATEST keeps the database from going backwards if Redis lost its counters.
    """
    statement = insert(AiUsage).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        period=period,
        prompt_tokens=usage.prompt,
        completion_tokens=usage.completion,
        total_tokens=usage.total,
        requests=usage.requests,
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[AiUsage.tenant_id, AiUsage.period],
        set_={
            column: func.greatest(getattr(AiUsage, column), getattr(excluded, column))
            for column in ("prompt_tokens", "completion_tokens", "total_tokens", "requests")
        }
        | {"updated_at": datetime.now(UTC)},
    )
    with tenant_transaction_sync(tenant_id) as session:
        session.execute(statement)


@celery_app.task(name="ai.aggregate_usage", bind=True, acks_late=True, autoretry_for=(OperationalError,))
def aggregate_ai_usage(self: Task, tenant_id: str | None = None) -> int:
    """Roll `ai:quota:*` counters into `ai_usage`: one tenant's current period, or every counter the index
    `ai:quota:index` names (beat). Index entries older than a counter's lifetime, or whose counter is gone,
    are dropped (no SCAN: it is not on the worker's Redis allow-list)."""
    client = worker_redis()
    index = keys.ai_quota_index()
    if tenant_id is not None:
        tenant = uuid.UUID(tenant_id)
        client.delete(keys.ai_quota_rollup_pending(tenant))
        targets = [(tenant, current_period())]
    else:
        client.zremrangebyscore(index, "-inf", time.time() - QUOTA_KEY_TTL_SECONDS)
        targets = [
            parsed
            for member in client.zrange(index, 0, -1)
            if (parsed := keys.parse_ai_quota_member(member)) is not None
        ]
    rolled = 0
    for tenant, period in targets:
        counters = client.hgetall(keys.ai_quota(tenant, period))
        if not counters:
            client.zrem(index, keys.ai_quota_member(tenant, period))  # expired or deleted with its tenant
            continue
        try:
            rollup_usage(tenant, period, Usage.from_hash(counters))
        except IntegrityError:  # the tenant was deleted after the counter was written: nothing to keep
            logger.warning("dropping AI counters of deleted tenant %s (%s)", tenant, period)
            client.delete(keys.ai_quota(tenant, period))
            client.zrem(index, keys.ai_quota_member(tenant, period))
            continue
        rolled += 1
    return rolled


S3_DELETE_BATCH = 1000  # DeleteObjects' limit


@celery_app.task(
    name="tenants.purge_objects",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(BotoCoreError, ClientError, RuntimeError),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=8,
)
def purge_tenant_objects(self: Task, tenant_id: str, subject_id: str | None = None) -> int:
    """Delete every version and delete marker under a deleted tenant's prefix (the bucket is versioned).

    Idempotent: a redelivered task finds fewer (or no) versions. Returns how many were deleted. `subject_id`
    (the outbox's subject: the tenant itself) is accepted and ignored.
    """
    prefix = f"{uuid.UUID(tenant_id)}/"  # a valid tenant id, so the prefix can never be "" or another's
    bucket = get_settings().s3_bucket
    s3 = s3_client()
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        versions = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in (*page.get("Versions", ()), *page.get("DeleteMarkers", ()))
        ]
        for start in range(0, len(versions), S3_DELETE_BATCH):
            batch = versions[start : start + S3_DELETE_BATCH]
            result = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if errors := result.get("Errors"):
                raise RuntimeError(f"S3 refused to delete {len(errors)} object versions: {errors[0]}")
            deleted += len(batch)
    logger.info("purged %d object versions of tenant %s", deleted, tenant_id)
    with tenant_transaction_sync(uuid.UUID(tenant_id)) as session:
        outbox.mark_done(session, self.name, tenant_id)
    return deleted
