"""Transactional outbox: side effects (emails, object purges) that can never be lost after a commit.

The request that causes a side effect records its intent — the Celery task and the row it acts on — in the
same transaction (`intend`), so the intent exists exactly when the order / donation / invite / deletion
does. After the commit the backend queues the task at once (the fast path: no added latency). The task
stamps the intent done (`mark_done`) in the transaction that records its effect (the `*_sent_at` stamp under
the row lock), so an intent is done exactly when its effect is.

The worker's relay (`Relay`, a thread of the worker's main process, so it runs wherever a worker runs: beat
is not needed) queues again every intent not done `OUTBOX_REPUBLISH_SECONDS` after it was last queued. That
covers a publish that failed (Redis down), a backend that died between commit and publish, and a message a
frozen or killed worker took off the queue without recording it as unacknowledged. Queueing twice is safe:
every task is idempotent (row lock + stamp), so a republished intent never sends a second email.

Backoff: an intent is queued again `OUTBOX_REPUBLISH_SECONDS` after the last publish, then after twice that
each time (30 s, 60 s, 120 s, ... capped at 32 x; migration 0004), and no pass republishes while the task
queue holds more than `BACKLOG_LIMIT` messages (the worker is behind: more copies would only delay it).

Bound: a committed intent whose publish failed is queued within `OUTBOX_REPUBLISH_SECONDS` +
`OUTBOX_RELAY_INTERVAL_SECONDS` of the broker and the database both answering again (30 s + 2 s by default).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.pool import NullPool

from app.models import OutboxEntry
from app.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.tenancy import TenantContext

logger = logging.getLogger("app.outbox")

CLAIM_BATCH = 200
BACKLOG_LIMIT = 200
CLAIM = text("SELECT tenant_id, task, subject_id, publish_count FROM app_outbox_claim(:limit, :after)")


async def intend(context: TenantContext, task: Any, subject_id: uuid.UUID) -> None:
    """Record that `task(tenant_id, subject_id)` must run, in the request's transaction; queue it after
    the commit. A second intent for the same task and subject is the same intent (nothing added)."""
    from app.api.tasks import enqueue  # the backend's queueing helper (anyio thread hop)

    await context.db.execute(
        insert(OutboxEntry)
        .values(id=uuid.uuid4(), tenant_id=context.tenant_id, task=task.name, subject_id=subject_id)
        .on_conflict_do_nothing(constraint="outbox_one_intent_per_subject")
    )
    context.after_commit(partial(enqueue, task, context.tenant_id, subject_id))


def mark_done(session: Session, task: str, subject_id: uuid.UUID | str) -> None:
    """Stamp the intent done, in the transaction that records the task's effect (the tenant's context)."""
    session.execute(
        update(OutboxEntry)
        .where(
            OutboxEntry.task == task,
            OutboxEntry.subject_id == uuid.UUID(str(subject_id)),
            OutboxEntry.done_at.is_(None),
        )
        .values(done_at=text("now()"))
    )


@dataclass(frozen=True)
class Claimed:
    tenant_id: uuid.UUID
    task: str
    subject_id: uuid.UUID
    publish_count: int


class Relay:
    """Queue again what is not done; one pass every `interval` seconds on a daemon thread.

    Its own engine without a pool: the worker's main process forks pool children, which must never inherit
    an open database connection.
    """

    def __init__(
        self, publish: Callable[[str, list[str]], object], backlog: Callable[[], int] = lambda: 0
    ) -> None:
        settings = get_settings()
        self.publish = publish
        self.backlog = backlog
        self.interval = settings.outbox_relay_interval_seconds
        self.republish_after = settings.outbox_republish_seconds
        self.engine = create_engine(settings.sync_database_url, poolclass=NullPool)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0

    def claim(self) -> list[Claimed]:
        with self.engine.begin() as connection:
            rows = connection.execute(CLAIM, {"limit": CLAIM_BATCH, "after": self.republish_after})
            return [Claimed(*row) for row in rows]

    def run_once(self) -> int:
        """One pass: claim the intents that are due and queue them; returns how many were queued."""
        queued = 0
        if (waiting := self.backlog()) > BACKLOG_LIMIT:
            logger.info("outbox: %d tasks already queued; not republishing this pass", waiting)
            return 0
        for intent in self.claim():
            # Claimed rows are stamped as queued now; one this pass cannot queue is due again next interval.
            self.publish(intent.task, [str(intent.tenant_id), str(intent.subject_id)])
            queued += 1
            logger.warning(
                "outbox: queued %s for %s again (tenant %s, publish #%d): it was not done %.0f s after the"
                " last publish",
                intent.task,
                intent.subject_id,
                intent.tenant_id,
                intent.publish_count,
                self.republish_after,
            )
        self.published += queued
        return queued

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # database or broker down: the next pass tries again
                logger.warning("outbox relay pass failed (%s: %s); retrying", type(exc).__name__, exc)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.engine.dispose()
