"""What the outbox tells whoever listens, without knowing who: a delivery needs people.

`delivery_problem` is sent (after the outcome is committed) when a delivery is rejected by HER-SYS or becomes a
dead letter; `problem` is "rejected" or "dead". The outbox imports nothing of its callers: notifications connects a
receiver (in its AppConfig.ready) that turns this into the worklist's 要対応 e-mail."""
from __future__ import annotations

from django.dispatch import Signal

delivery_problem = Signal()  # kwargs: delivery_id (int), hospital_id (int), problem ("rejected" | "dead")
