"""`broker.task_publish` (issue 13): on a plain Redis broker it writes the task message itself in one LPUSH. The
message must be the one Celery's `apply_async` writes, field by field, or workers would run something else (or
nothing); everything it does not handle goes through `apply_async`."""
import base64
import json
import os
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import pytest

from assist_portal import broker
from assist_portal.celery import app
from assist_portal.delivery.tasks import deliver

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL.startswith("redis://"), reason="needs Redis (make test provides it)")
UNIQUE = ("id", "root_id", "correlation_id", "delivery_tag", "eta")  # per message (eta: now + countdown)


def _own_db_url() -> str:
    """A Redis database number of this test's own (no worker consumes it): the messages stay to be read."""
    parts = urlsplit(REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/9", "", ""))


def _messages(client, key: str, ids: set[str]) -> dict[str, dict]:
    out = {}
    for raw in client.lrange(key, 0, -1):
        message = json.loads(raw)
        if message["headers"]["id"] in ids:
            client.lrem(key, 1, raw)
            out[message["headers"]["id"]] = message
    return out


def _masked(message: dict) -> dict:
    message = json.loads(json.dumps(message))
    for part in (message["headers"], message["properties"]):
        for key in UNIQUE:
            if key in part:
                part[key] = bool(part[key])
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


@needs_redis
@pytest.mark.parametrize("countdown", [None, 30.0])
def test_the_message_is_the_one_apply_async_writes(countdown):
    import redis

    url = _own_db_url()
    publisher = broker._RedisPublisher(app, url)
    client = redis.Redis.from_url(url)
    with app.connection_for_write(url) as connection:
        celery_id = deliver.apply_async(args=[4242], countdown=countdown, connection=connection).id
    ours_id = publisher.publish(deliver, [4242], countdown)
    found = _messages(client, "hersys", {celery_id, ours_id})
    assert set(found) == {celery_id, ours_id}
    celery, ours = found[celery_id], found[ours_id]
    assert _masked(ours) == _masked(celery)
    assert ours["headers"]["root_id"] == ours["properties"]["correlation_id"] == ours_id
    assert json.loads(base64.b64decode(ours["body"]))[0] == [4242]
    if countdown:
        etas = [datetime.fromisoformat(m["headers"]["eta"]) for m in (ours, celery)]
        assert abs((etas[0] - etas[1]).total_seconds()) < 5
    else:
        assert ours["headers"]["eta"] is None


@needs_redis
def test_publishing_is_one_lpush_onto_the_queue(monkeypatch):
    import redis

    url = _own_db_url()
    publisher = broker._RedisPublisher(app, url)
    commands = []
    real = publisher.client.execute_command
    monkeypatch.setattr(publisher.client, "execute_command",
                        lambda *args, **kw: commands.append(args[0]) or real(*args, **kw))
    task_id = publisher.publish(deliver, [7], None)
    assert commands == ["LPUSH"]
    assert _messages(redis.Redis.from_url(url), "hersys", {task_id})


def test_what_it_does_not_handle_goes_through_apply_async(monkeypatch, settings):
    """Eager mode, another broker, options of the task's own and a publish from inside a running task."""
    sent = []

    class Result:
        id = "from-apply-async"

    monkeypatch.setattr(deliver, "apply_async", lambda args=None, countdown=None, **kw: sent.append(args) or Result())
    monkeypatch.setattr(broker, "_publisher", None)
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    assert broker.task_publish(deliver, [1]) == "from-apply-async"
    monkeypatch.setitem(app.conf, "task_always_eager", False)

    monkeypatch.setitem(app.conf, "broker_write_url", "filesystem://")
    assert broker._publisher_for(app) is None
    assert broker.task_publish(deliver, [2]) == "from-apply-async"

    for failover in ("redis://127.0.0.1:6379/9;redis://127.0.0.2:6379/9", ["redis://127.0.0.1:6379/9"]):
        monkeypatch.setitem(app.conf, "broker_write_url", failover)
        assert broker._publisher_for(app) is None  # kombu chooses among them: apply_async

    monkeypatch.setitem(app.conf, "broker_write_url", "redis://127.0.0.1:6379/9")
    monkeypatch.setattr(broker, "_publisher", None)
    monkeypatch.setitem(app.conf, "broker_transport_options", {"visibility_timeout": 60, "global_keyprefix": "x"})
    assert broker._publisher_for(app) is None
    monkeypatch.setitem(app.conf, "broker_transport_options", {"visibility_timeout": 60})
    monkeypatch.setattr(broker, "_publisher", None)
    publisher = broker._publisher_for(app)
    assert isinstance(publisher, broker._RedisPublisher)
    options = deliver._get_exec_options()
    monkeypatch.setattr(deliver, "_get_exec_options", lambda: {**options, "priority": 5})
    assert publisher.publish(deliver, [3], None) is None  # the task's own option: Celery applies it

    from celery import signals

    def traced(**kwargs):  # a tracing library listening to the publish
        pass

    signals.before_task_publish.connect(traced)
    try:
        assert broker.task_publish(deliver, [5]) == "from-apply-async"
    finally:
        signals.before_task_publish.disconnect(traced)

    monkeypatch.setattr(type(app), "current_worker_task", property(lambda self: object()))
    assert broker.task_publish(deliver, [4]) == "from-apply-async"
    assert sent == [[1], [2], [5], [4]]


@needs_redis
def test_a_forked_process_or_another_broker_gets_its_own_connection(monkeypatch):
    """A pool child does not share its parent's socket; a process pointed at another broker (as the chaos suite
    points this one at a Redis it can stop) publishes there, not to the broker it started with."""
    import redis

    monkeypatch.setattr(broker, "_publisher", None)
    monkeypatch.setattr(broker, "_decided_on", None)
    first = broker._publisher_for(app)
    assert broker._publisher_for(app) is first  # the same process, nothing changed: the same one
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # a child, with its parent's memory
    assert broker._publisher_for(app) is not first

    url = _own_db_url()
    monkeypatch.setattr(app.conf, "broker_url", url)
    task_id = broker.task_publish(deliver, [99])
    assert broker._publisher_for(app).client.connection_pool.connection_kwargs["db"] == 9
    assert _messages(redis.Redis.from_url(url), "hersys", {task_id})


@needs_redis
def test_a_consumer_acknowledges_through_one_kept_client_per_connection_pool():
    """kombu's Redis channel keeps one client per connection pool for its commands (the unacked index written on
    receipt and cleared on ack) instead of building one per command; a message consumed and acknowledged that
    way leaves nothing unacknowledged behind, and a new pool (a reconnection) gets a new client."""
    import redis
    from kombu import Connection

    url = _own_db_url()
    plain = redis.Redis.from_url(url)
    plain.delete("hersys-kept-client", "unacked", "unacked_index")
    with Connection(url) as conn:
        channel = conn.default_channel
        first = channel._create_client()
        assert channel._create_client() is first and first.connection_pool is channel.pool
        queue = conn.SimpleQueue("hersys-kept-client")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert plain.hlen("unacked") == 1  # written on receipt through the kept client
        message.ack()
        assert plain.hlen("unacked") == 0 and plain.zcard("unacked_index") == 0
        queue.close()

        channel._pool = None  # as kombu does when it reconnects
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel.pool
    plain.delete("hersys-kept-client")


@needs_redis
def test_the_publisher_follows_a_changed_setting_at_the_next_publish(settings, monkeypatch):
    """The decision is kept while nothing changed; a Django setting changed (override_settings) or Celery's
    configuration changed through `app.conf` is seen at the next publish, and changed back, too."""
    monkeypatch.setattr(broker, "_publisher", None)
    monkeypatch.setattr(broker, "_decided_on", None)
    plain = broker._publisher_for(app)
    assert plain is not None and broker._publisher_for(app) is plain
    settings.CELERY_TASK_COMPRESSION = "gzip"  # a compressed body: not the plain LPUSH
    assert broker._publisher_for(app) is None
    del settings.CELERY_TASK_COMPRESSION
    assert broker._publisher_for(app) is not None
    with monkeypatch.context() as changed:
        changed.setitem(app.conf, "task_serializer", "pickle")
        assert broker._publisher_for(app) is None
    assert broker._publisher_for(app) is not None  # changed back
    other = _own_db_url()
    monkeypatch.setenv("CELERY_BROKER_URL", other)  # Celery reads it on every look-up of the broker URL
    assert broker._publisher_for(app).client.connection_pool.connection_kwargs["db"] == 9
