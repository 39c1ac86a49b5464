"""Patient data at rest: encrypted JSON and bytes model fields (Fernet, key rotation through MultiFernet)."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PATIENT_DATA_KEYS))


def encrypt_json(value: Any) -> str:
    raw = json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder, separators=(",", ":"))
    return fernet().encrypt(raw.encode()).decode()


def decrypt_json(token: str) -> Any:
    return json.loads(fernet().decrypt(token.encode()))


class EncryptedJSONField(models.TextField):
    """A JSON value stored encrypted; the database never holds it in clear text. Not queryable by content."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return None
        return decrypt_json(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt_json(value)


class EncryptedBytesField(models.TextField):
    """Bytes stored encrypted (as a Fernet token), returned exactly as written; None stays None (e.g. erased)."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return None
        return fernet().decrypt(value.encode())

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("EncryptedBytesField stores bytes")
        return fernet().encrypt(bytes(value)).decode()
