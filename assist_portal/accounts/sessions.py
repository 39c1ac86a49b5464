"""Session engine: Django's database sessions, with the one read every request makes compiled once per process.

Every signed-in request loads its session (`SELECT … FROM django_session WHERE session_key = … AND expire_date >
now`); Django compiled that query anew each time, which cost several times what PostgreSQL takes to answer it
(issue 13). Storage, expiry, rotation and `clearsessions` are Django's own (`django.contrib.sessions.backends.db`).
"""
from __future__ import annotations

import logging

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

from assist_portal.sqlcache import CompiledQuery

_SESSION_DATA = CompiledQuery(lambda key, now: Session.objects.filter(session_key=key, expire_date__gt=now)
                              .values_list("session_data"))


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if not isinstance(self.session_key, str):  # as Django's: no key, no session
            self._session_key = None
            return None
        try:
            rows = _SESSION_DATA.rows(self.session_key, timezone.now(), using=self._using())
        except SuspiciousOperation as e:  # as Django's: a malformed key is logged and treated as no session
            logging.getLogger(f"django.security.{e.__class__.__name__}").warning(str(e))
            rows = []
        if not rows:
            self._session_key = None
            return None
        return Session(session_key=self.session_key, session_data=rows[0][0])

    def _using(self) -> str:
        from django.db import router

        return router.db_for_read(Session)
