"""A fix on top of kombu's Redis transport: a worker holding unacknowledged messages survives a Redis restart.

The failure (celery 5.7.0 with kombu 5.7.0 or 5.6.2; not celery 5.6.3, see docs/operations.md and the chaos test
``tests/chaos/test_redis_restart_busy.py``): when the broker connection drops, the worker's consumer first calls
``Connection.collect()`` and then, new in celery 5.7.0, ``Connection.close()``.

1. ``collect()`` closes the task channel. kombu's ``Channel.close()`` starts by reading the reply of the BRPOP it has
   in flight; the socket is dead, so that read raises a connection error and ``close()`` stops right there, leaving
   the channel open with its unacknowledged messages. ``collect()`` then detaches the transport
   (``transport.client = None``).
2. ``close()`` closes the same channel again. This time it gets past the BRPOP read and, as every close does, tries to
   put the unacknowledged messages back on Redis through a new connection pool, built from ``transport.client``,
   which is now ``None``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not a
   connection error, so celery does not ignore it: "Unrecoverable error", the worker exits with code 1.

An idle worker has nothing to put back and survives, which is why only busy workers (acks_late tasks running,
countdown retries waiting) died.

The patch changes two things on ``kombu.transport.redis.Channel`` (every Redis-family transport: redis://,
rediss://, sentinel://):

- ``close()`` carries on closing when the in-flight BRPOP reply cannot be read because the connection is gone, so
  the channel is closed (and its messages put back on Redis if it is reachable again) while the transport is still
  attached; the second close finds it closed and does nothing.
- a channel whose transport was already detached raises a Redis ``ConnectionError`` instead of ``AttributeError``
  when it needs a connection, which the cleanup code ignores as it ignores any other lost connection.

A third change is for speed (issue 13): ``_create_client()`` keeps one client per connection pool instead of
building one for every command (see there).

Messages that could not be put back stay in Redis' unacked index (redelivered after the visibility timeout) or, if
Redis lost its data, are lost to the broker; the outbox sweeper re-enqueues their deliveries either way.
"""
from __future__ import annotations

from queue import Empty

_PATCHED = "_hersys_broker_patch"


def patch_kombu_redis() -> bool:
    """Apply the fix once per process. Returns False when kombu's Redis transport is unavailable."""
    try:
        import redis
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - redis is a pinned dependency
        return False
    channel = kombu_redis.Channel
    if getattr(channel, _PATCHED, False):
        return True
    original_close = channel.close
    original_connparams = channel._connparams
    original_create_client = channel._create_client

    def close(self):
        if self._in_poll:
            try:
                self._brpop_read()  # always clears _in_poll, so kombu's close does not read again
            except Empty:
                pass
            except self.connection_errors:
                pass  # the connection is gone: there is no reply left to read, go on closing
        original_close(self)

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or getattr(transport, "client", None) is None:
            raise redis.exceptions.ConnectionError("broker connection already closed")
        return original_connparams(self, asynchronous=asynchronous)

    def _create_client(self, asynchronous=False):
        # kombu builds a new redis client object (~0.15 ms: its table of ~200 response callbacks) for each
        # command it sends outside the consumer's BRPOP: two per task message (unacked index in, and out on ack).
        # Those clients all share the channel's connection pool and keep no state of their own, so one is kept
        # per pool; a new pool (reconnection, another broker URL) gets a new one.
        if asynchronous:
            return original_create_client(self, asynchronous=True)
        pool = self.pool
        cached = self.__dict__.get("_hersys_client")
        if cached is None or cached.connection_pool is not pool:
            cached = original_create_client(self)
            self.__dict__["_hersys_client"] = cached
        return cached

    close.__doc__ = original_close.__doc__
    channel.close = close
    channel._connparams = _connparams
    channel._create_client = _create_client
    setattr(channel, _PATCHED, True)
    return True


# -- publishing a task in one LPUSH (issue 13) ----------------------------------------------------------------------
#
# `Task.apply_async` costs ~0.65 ms of CPU per call on the benchmark machine (routing, the producer pool, kombu's
# retry wrapper, a new redis client object and a binding lookup per message); the message itself is one LPUSH of
# a JSON document onto the queue's list (~0.1 ms). Every confirmation publishes one `deliver`, so `task_publish`
# writes that LPUSH itself, with the message Celery builds (`app.amqp.as_task_v2`: headers, properties, body) in
# kombu's Redis envelope. Anything it does not handle goes through `apply_async`: another broker (the embedded
# filesystem transport), failover URLs, eager mode, transport options beyond the visibility timeout (key prefixes,
# priorities), task options of the task's own, publish signal receivers or sent events, and publishing from inside
# a running task (Celery records the parent there). `tests/portal/test_broker_publish.py`
# compares the message field by field with the one `apply_async` writes, and a real worker runs it.

_PLAIN_TRANSPORT_OPTIONS = {"visibility_timeout"}


class _RedisPublisher:
    def __init__(self, app, url: str) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.app = app
        # A broker restart drops the connection: reconnect and try again (briefly) before the caller gives up
        # and leaves the delivery to the sweeper.
        self.client = redis.Redis.from_url(
            url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
            socket_connect_timeout=5, socket_timeout=10)
        self.routes: dict[str, tuple[str, str] | None] = {}

    def _route(self, task) -> tuple[str, str] | None:
        """(list key, routing key) of the task's queue, as Celery's router gives it (once per task name)."""
        if task.name in self.routes:
            return self.routes[task.name]
        route = None
        shaped = {k: v for k, v in task._get_exec_options().items()
                  if v is not None and k != "ignore_result" and (k, v) != ("serializer", "json")}
        if not shaped:  # else the task sets options of its own (priority, expiry, time limits…): Celery's
            queue = self.app.amqp.router.route({}, task.name, (), {}, task)["queue"]
            if queue.exchange.name in ("", queue.name) and queue.routing_key in (None, "", queue.name):
                route = (queue.name, queue.name)  # else a custom exchange or binding: kombu's lookup decides
        return self.routes.setdefault(task.name, route)  # None too: decided once per task name

    def publish(self, task, args, countdown) -> str | None:
        """The task's id once its message is on the queue; None when this route is not a plain one."""
        import base64
        from uuid import uuid4

        from kombu.utils.json import dumps

        route = self._route(task)
        if route is None:
            return None
        key, routing_key = route
        task_id = str(uuid4())
        message = self.app.amqp.as_task_v2(
            task_id, task.name, args=list(args), kwargs={}, countdown=countdown, reply_to=self.app.thread_oid,
            ignore_result=bool(task.ignore_result))
        body = dumps(message.body).encode()
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": message.headers,
            "properties": {
                **message.properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": routing_key},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid4()),
            },
        }
        self.client.lpush(key, dumps(envelope))
        return task_id


_publisher: tuple[tuple, object] | None = None
# What the last decision was taken on: reading the eight settings below costs ~75 µs (Celery looks each one up
# under its Django name first), a tenth of the publish itself. A change of Celery's configuration through
# `app.conf` lands in its first map (`conf.changes`), Django's settings change by replacing the wrapped object
# (override_settings), and Celery reads two environment variables on every look-up of the broker URL: while none of
# these changed (nor the transport options' names), in the same process, the decision stands.
_decided_on: tuple | None = None


def _decision_inputs(conf) -> tuple:
    import os

    from django.conf import settings

    return (os.getpid(), conf, getattr(settings, "_wrapped", None), os.environ.get("CELERY_BROKER_URL"),
            os.environ.get("CELERY_BROKER_WRITE_URL"))


def _publisher_for(app):
    """The publisher for the app's broker as configured now (a forked child, or a changed broker URL, gets its
    own connection), or None when apply_async must do it."""
    import os

    global _publisher, _decided_on
    conf = app.conf
    seen, now = _decided_on, _decision_inputs(conf)
    if (seen is not None and _publisher is not None and seen[0] == now
            and seen[1] == conf.changes and seen[2] == tuple(sorted(conf.broker_transport_options or {}))):
        return _publisher[1]
    url = conf.broker_write_url or ""  # Celery's: broker_url unless a separate write URL is set
    if not isinstance(url, str) or ";" in url:  # a list or failover URLs: kombu chooses the broker, not us
        _decided_on = None
        return None
    options = conf.broker_transport_options or {}
    key = (os.getpid(), url, tuple(sorted(options)), conf.broker_use_ssl, conf.task_serializer, conf.task_compression,
           conf.task_protocol, conf.task_send_sent_event)  # everything `plain` below depends on
    cached = _publisher
    if cached is None or cached[0] != key:
        plain = (url.startswith("redis://") and not conf.broker_use_ssl and set(options) <= _PLAIN_TRANSPORT_OPTIONS
                 and conf.task_serializer == "json" and not conf.task_compression and conf.task_protocol == 2
                 and not conf.task_send_sent_event)
        _publisher = (key, _RedisPublisher(app, url) if plain else None)
    _decided_on = (now, dict(conf.changes), tuple(sorted(options)))
    return _publisher[1]


def _publish_hooks() -> bool:
    """Whether something listens to Celery's publish signals (tracing, monitoring): apply_async sends them."""
    from celery import signals

    return bool(signals.before_task_publish.receivers or signals.after_task_publish.receivers)


def task_publish(task, args, *, countdown: float | None = None) -> str:
    """`task.apply_async(args=args, countdown=countdown)`, cheaper on a plain Redis broker (see above); returns the
    task id. Raises what the broker raises (the caller decides what a lost enqueue means)."""
    app = task.app
    if not app.conf.task_always_eager and app.current_worker_task is None and not _publish_hooks():
        publisher = _publisher_for(app)
        task_id = publisher.publish(task, args, countdown) if publisher is not None else None
        if task_id is not None:
            return task_id
    return task.apply_async(args=list(args), countdown=countdown).id
