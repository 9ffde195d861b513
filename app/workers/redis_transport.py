"""kombu's Redis transport, subscribing to fanout channels with SUBSCRIBE instead of PSUBSCRIBE.

Why: with `global_keyprefix="celery:"` kombu prefixes every key *and* every pub/sub channel, but it joins
fanout exchanges (`celery.pidbox` for remote control / `inspect ping`, `celeryev` for events) with
PSUBSCRIBE. Redis/Valkey ACLs compare a PSUBSCRIBE pattern *literally* against the user's channel rules, so
`PSUBSCRIBE celery:/0.celery.pidbox` is refused under `&celery:*` (NOPERM) and the worker dies at start-up.
With `fanout_patterns` off the topics carry no routing-key wildcard, so a plain SUBSCRIBE to the exact
channel receives the same messages and passes the ACL's `celery:*` channel pattern.

It also survives a broker restart (kombu 5.7.0, pinned in pyproject.toml). When the connection drops,
Celery closes the channel, and the channel's close returns the messages it holds to the queue
(`QoS.restore_unacked`) through a client it rebuilds from a transport that is already released:
`'NoneType' object has no attribute 'hostname'` (or `'client'`) escaped from the consumer and the worker
exited. The same happens to the acknowledgement of a task that was running across the reconnect (it goes to
the old channel). The QoS below gives up on those quietly instead: the messages are still recorded in
`celery:unacked`, so the visibility-timeout sweep of the new connection delivers them again (the tasks are
idempotent: an email already stamped is not sent twice), and the worker goes on to reconnect.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

logger = logging.getLogger("app.workers.redis_transport")


def _lost(what: str, count: int, exc: Exception) -> None:
    logger.warning(
        "%d message(s): could not %s them on a closed broker connection (%s); they stay in celery:unacked"
        " and are delivered again after the visibility timeout",
        count,
        what,
        type(exc).__name__,
    )


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except Exception as exc:  # broker unreachable, or its transport already released
            held = len(self._delivered)
            self._delivered.clear()
            _lost("requeue", held, exc)

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._delivered.pop(delivery_tag, None)
            _lost("acknowledge", 1, exc)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._delivered.pop(delivery_tag, None)
            _lost("reject", 1, exc)


class Channel(kombu_redis.Channel):
    QoS = QoS
    fanout_patterns = False

    def _subscribe(self) -> None:
        topics = [
            topic
            for queue in self.active_fanout_queues
            for topic in self._get_subscribe_topics(queue)  # type: ignore[no-untyped-call]
        ]
        if not topics:
            return
        client = self.subclient
        if client.connection._sock is None:
            client.connection.connect()
        self._in_listen = client.connection
        client.subscribe(topics)

    def _unsubscribe_from(self, queue: str) -> None:
        topics = self._get_subscribe_topics(queue)  # type: ignore[no-untyped-call]
        client = self.subclient
        if client.connection and client.connection._sock:
            client.unsubscribe(topics)


class Transport(kombu_redis.Transport):
    Channel = Channel
