"""backoff_delay (full jitter, never below Retry-After) and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hersys_client import backoff_delay, parse_retry_after

attempts = st.integers(min_value=1, max_value=10_000)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
bases = st.floats(min_value=0, max_value=100, allow_nan=False)
caps = st.floats(min_value=0, max_value=1e5, allow_nan=False)


@given(attempts, st.none() | seconds, bases, caps, st.integers())
def test_delay_is_within_the_jitter_window_or_exactly_retry_after(attempt, retry_after, base, cap, seed) -> None:
    delay = backoff_delay(attempt, retry_after, base=base, cap=cap, rng=random.Random(seed))
    window = min(cap, base * 2.0 ** min(attempt - 1, 64))
    assert delay >= 0
    if retry_after is None:
        assert delay <= window
    else:
        assert delay >= retry_after
        assert delay <= max(window, retry_after)


@given(attempts, seconds)
def test_never_less_than_retry_after_even_above_the_cap(attempt, retry_after) -> None:
    assert backoff_delay(attempt, retry_after, base=1, cap=5) >= retry_after


@given(st.integers(min_value=1, max_value=20))
def test_window_grows_then_stops_at_the_cap(attempt) -> None:
    rng = random.Random(0)
    delays = [backoff_delay(attempt, base=1, cap=60, rng=rng) for _ in range(200)]
    assert max(delays) <= min(60, 2 ** (attempt - 1))
    assert len(set(delays)) > 150  # jittered, not a fixed schedule


def test_attempt_must_start_at_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0)


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2022, 8, 19, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    assert parse_retry_after("Fri, 19 Aug 2022 11:00:00 GMT", now=now) == 0  # in the past: go now
    for junk in (None, "", "soon", "-5", "nan", "inf", "Fri, 99 Foo 2022"):
        assert parse_retry_after(junk) is None
