"""Client for the HER-SYS WebAPI, the document Bundle builder and the HER-SYS sandbox. Imports no Django."""

from .bundle import build_document_bundle, questionnaire_canonical
from .client import HersysClient, Receipt
from .errors import HersysError, PermanentError, RetryableError, backoff_delay, parse_retry_after

__all__ = [
    "HersysClient",
    "Receipt",
    "HersysError",
    "RetryableError",
    "PermanentError",
    "backoff_delay",
    "parse_retry_after",
    "build_document_bundle",
    "questionnaire_canonical",
]
