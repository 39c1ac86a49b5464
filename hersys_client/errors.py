"""Error taxonomy of the HER-SYS client: retryable vs permanent.

The caller (the delivery worker) decides only one thing from an error: try again later (`RetryableError`, with
`backoff_delay`) or stop and show a person what is wrong (`PermanentError`). `message_ja` is meant for users and
is always Japanese; it never contains patient data beyond what HER-SYS itself wrote in its diagnostics.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class HersysError(Exception):
    """Base class: anything that went wrong talking to HER-SYS."""

    def __init__(self, message_ja: str, status: int | None = None) -> None:
        super().__init__(message_ja)
        self.message_ja = message_ja
        self.status = status


class RetryableError(HersysError):
    """Temporary failure (network, timeout, 5xx, 429): the same request may be sent again with the same key."""

    def __init__(self, message_ja: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message_ja, status)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"RetryableError(status={self.status!r}, retry_after={self.retry_after!r}, {self.message_ja!r})"


class PermanentError(HersysError):
    """HER-SYS refused the request (400/401 after refresh/403/404/409/422): retrying cannot help; a person must act."""

    def __init__(self, message_ja: str, status: int | None = None, issues: list[str] | None = None) -> None:
        super().__init__(message_ja, status)
        self.issues: list[str] = list(issues or [])

    def __repr__(self) -> str:
        return f"PermanentError(status={self.status!r}, issues={self.issues!r}, {self.message_ja!r})"


class RevisionConflict(PermanentError):
    """409: HER-SYS already holds this revision number (or a newer one) of the notification under another key, i.e.
    with other content. Replaying cannot help; ask HER-SYS what it holds (`HersysClient.lookup`)."""


class IdempotencyKeyReused(PermanentError):
    """409: this idempotency key was already used with a different body. HER-SYS keeps the first body; nothing
    was stored. The sender's record and HER-SYS disagree and a person must look."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date. None if absent or unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(
    attempt: int,
    retry_after: float | None = None,
    base: float = 2.0,
    cap: float = 600.0,
    rng: random.Random | None = None,
) -> float:
    """Delay in seconds before retry number `attempt` (1 = first retry): "full jitter" exponential backoff.

    The jittered value is uniform in [0, min(cap, base * 2**(attempt-1))]; the result is never less than
    `retry_after` (the server's Retry-After wins over the cap).
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be non-negative")
    exponent = min(attempt - 1, 64)  # 2**64 * base already exceeds any sensible cap; avoids float overflow
    ceiling = min(cap, base * float(2**exponent))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > delay:
        return float(retry_after)
    return delay
