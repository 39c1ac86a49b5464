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

    close.__doc__ = original_close.__doc__
    channel.close = close
    channel._connparams = _connparams
    setattr(channel, _PATCHED, True)
    return True
