"""FHIR R4 Questionnaire / QuestionnaireResponse (eInfectionReport IG). Work in progress: see issue 4."""
from __future__ import annotations

from typing import Any

from .errors import DefinitionError


def to_questionnaire(defn: dict[str, Any], *, url: str, version: str) -> dict[str, Any]:
    raise DefinitionError("FHIR Questionnaire への変換はまだ実装中です。")


def from_questionnaire(q: dict[str, Any]) -> dict[str, Any]:
    raise DefinitionError("FHIR Questionnaire からの読み込みはまだ実装中です。")


def to_questionnaire_response(defn: dict[str, Any], values: dict[str, Any], *, questionnaire_canonical: str,
                              status: str) -> dict[str, Any]:
    raise DefinitionError("QuestionnaireResponse への変換はまだ実装中です。")
