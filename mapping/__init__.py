"""EMR extracts (SS-MIX2 / FHIR R4 / DWH CSV) → HER-SYS item values with provenance.

Plain Python: this package must never import Django (it also runs inside hospital connectors).
See docs/contracts.md §2 and mapping/README.md.
"""

from . import formats
from .codes import LocalCodes, load_local_codes
from .csvdwh import extract_csv, extract_csv_patients, load_profile
from .fhir import extract_fhir
from .ssmix2 import extract_ssmix2_dir, extract_ssmix2_files

__all__ = [
    "LocalCodes",
    "extract_csv",
    "extract_csv_patients",
    "extract_fhir",
    "extract_ssmix2_dir",
    "extract_ssmix2_files",
    "formats",
    "load_local_codes",
    "load_profile",
]
