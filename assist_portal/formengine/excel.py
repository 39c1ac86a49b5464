"""Excel layout import (eInfectionReport IG authors' layout). Work in progress: see issue 4."""
from __future__ import annotations

from typing import Any

from .errors import DefinitionError


def from_excel_layout(path_or_bytes: Any) -> dict[str, Any]:
    raise DefinitionError("Excel 様式の読み込みはまだ実装中です。")
