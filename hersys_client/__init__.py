"""Client for the HER-SYS WebAPI, the document Bundle builder and the HER-SYS sandbox. Imports no Django."""

from .bundle import build_document_bundle, questionnaire_canonical
from .client import HeldRevision, HersysClient, Holding, Receipt
from .errors import (
    HersysError,
    IdempotencyKeyReused,
    PermanentError,
    RetryableError,
    RevisionConflict,
    backoff_delay,
    parse_retry_after,
)

__all__ = [
    "HersysClient",
    "Receipt",
    "Holding",
    "HeldRevision",
    "RevisionConflict",
    "IdempotencyKeyReused",
    "HersysError",
    "RetryableError",
    "PermanentError",
    "backoff_delay",
    "parse_retry_after",
    "build_document_bundle",
    "questionnaire_canonical",
]
