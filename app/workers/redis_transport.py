"""kombu's Redis transport, subscribing to fanout channels with SUBSCRIBE instead of PSUBSCRIBE.

Why: with `global_keyprefix="celery:"` kombu prefixes every key *and* every pub/sub channel, but it joins
fanout exchanges (`celery.pidbox` for remote control / `inspect ping`, `celeryev` for events) with
PSUBSCRIBE. Redis/Valkey ACLs compare a PSUBSCRIBE pattern *literally* against the user's channel rules, so
`PSUBSCRIBE celery:/0.celery.pidbox` is refused under `&celery:*` (NOPERM) and the worker dies at start-up.
With `fanout_patterns` off the topics carry no routing-key wildcard, so a plain SUBSCRIBE to the exact
channel receives the same messages and passes the ACL's `celery:*` channel pattern.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
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
