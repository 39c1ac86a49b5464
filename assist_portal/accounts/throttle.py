"""Brute-force protection of the sign-in that a stranger cannot turn against the account holder.

Failures are counted per source, never per account alone:
- per user name *and* client address (`LOGIN_MAX_FAILURES`): guessing one account from one place locks that
  account *for that place only* — the holder signing in from the hospital is not locked out by a stranger
  elsewhere who knows the user name;
- per client address, whatever the names (`LOGIN_IP_MAX_FAILURES`): one place cannot try many accounts.

A lock lasts `LOGIN_LOCKOUT_SECONDS` and doubles with every further lock of the same source, up to
`LOGIN_LOCKOUT_MAX_SECONDS` (exponential backoff); refusals during a lock are not counted, so a lock always ends
when it says; when it ends the counter starts again from zero. Failures older than `LOGIN_FAILURE_WINDOW_SECONDS`
are forgotten, and a source quiet for `LOGIN_BACKOFF_RESET_SECONDS` starts its doubling over. A successful
sign-in clears the account-and-address counter. An administrator's unlock clears every lock of the account.

User names are keyed by HMAC (SECRET_KEY): a password typed into the user-name field is stored nowhere.
"""
from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from assist_portal.audit.services import audit_record, client_ip

from .models import SignInThrottle, User

Scope = SignInThrottle.Scope


def _now():
    return timezone.now()


def name_hash(username: str) -> str:
    """A stable, keyed digest of a typed user name, for the audit log of unknown names (16 hex digits)."""
    return _digest("name", username)[:16]


def _digest(kind: str, text: str) -> str:
    message = f"{kind}\n{text}".encode("utf-8", "surrogatepass")
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Source:
    """Who is trying: the typed user name (stripped) and the client address."""

    username: str
    address: str

    @classmethod
    def of(cls, request, username: str) -> Source:
        return cls(username=(username or "").strip(), address=client_ip(request) or "unknown")

    def keys(self) -> list[tuple[str, str]]:
        return [(Scope.ACCOUNT_ADDRESS, _digest("account", f"{self.username}\n{self.address}")),
                (Scope.ADDRESS, _digest("address", self.address))]


def _limit(scope: str) -> int:
    return settings.LOGIN_MAX_FAILURES if scope == Scope.ACCOUNT_ADDRESS else settings.LOGIN_IP_MAX_FAILURES


def lock_seconds(level: int) -> int:
    """The length of a source's lock number `level + 1`: base × 2^level, capped."""
    base, cap = settings.LOGIN_LOCKOUT_SECONDS, settings.LOGIN_LOCKOUT_MAX_SECONDS
    return int(min(cap, base * 2 ** min(level, 32)))


def is_locked(source: Source) -> bool:
    now = _now()
    return SignInThrottle.objects.filter(key__in=[k for _, k in source.keys()], locked_until__gt=now).exists()


def _row(scope: str, key: str) -> SignInThrottle:
    try:
        with transaction.atomic():
            SignInThrottle.objects.get_or_create(scope=scope, key=key)
    except IntegrityError:  # created concurrently
        pass
    return SignInThrottle.objects.select_for_update().get(scope=scope, key=key)


def failure_register(source: Source, *, user: User | None, request=None) -> None:
    """Count one failed attempt of `source` (the caller checked it was not locked); lock what crosses its limit."""
    now = _now()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    forget = timedelta(seconds=settings.LOGIN_BACKOFF_RESET_SECONDS)
    locks = []
    with transaction.atomic():
        for scope, key in source.keys():
            row = _row(scope, key)
            if row.locked_until is not None and row.locked_until > now:
                continue  # refused attempts during a lock never extend it
            if row.last_failure_at is None or now - row.last_failure_at > window:
                row.failures = 0
            if row.last_failure_at is None or now - row.last_failure_at > forget:
                row.level = 0
            row.failures += 1
            row.last_failure_at = now
            row.locked_until = None
            if scope == Scope.ACCOUNT_ADDRESS and user is not None:
                row.user = user
            if row.failures >= _limit(scope):
                seconds = lock_seconds(row.level)
                row.locked_until = now + timedelta(seconds=seconds)
                row.level += 1
                row.failures = 0  # the counter starts again when the lock ends
                locks.append((scope, seconds, row.level))
            row.save()
    for scope, seconds, level in locks:
        audit_record("login.locked", request=request, user=user if scope == Scope.ACCOUNT_ADDRESS else None,
                     object_type="username" if user is None and scope == Scope.ACCOUNT_ADDRESS else "",
                     object_id=name_hash(source.username) if user is None and scope == Scope.ACCOUNT_ADDRESS else "",
                     scope=str(scope), seconds=seconds, lock_number=level)
    if random.random() < 0.01:
        throttle_purge()


def success_register(source: Source) -> None:
    """The right password and code from this place: its account-and-address counter starts over."""
    SignInThrottle.objects.filter(scope=Scope.ACCOUNT_ADDRESS, key=source.keys()[0][1]).delete()


def account_locks(user: User):
    return SignInThrottle.objects.filter(user=user, locked_until__gt=_now())


def account_unlock(user: User) -> int:
    """An administrator's unlock: every lock and counter of the account, from every address."""
    count, _ = SignInThrottle.objects.filter(user=user).delete()
    return count


def throttle_purge() -> int:
    """Forget sources that have been quiet longer than the backoff memory (keeps the table small)."""
    cutoff = _now() - timedelta(seconds=max(settings.LOGIN_BACKOFF_RESET_SECONDS,
                                            settings.LOGIN_LOCKOUT_MAX_SECONDS))
    count, _ = SignInThrottle.objects.filter(last_failure_at__lt=cutoff).exclude(locked_until__gt=_now()).delete()
    return count
