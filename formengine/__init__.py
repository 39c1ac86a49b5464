"""The form engine: central form definitions and their pure interpreter (no Django, no I/O, no clock).

Public API (see README.md in this folder and docs/adr/0005-form-definition-format.md):

* definitions: ``load_catalog`` (enriched ``vocabulary`` catalog → definition), ``builtin_catalog``,
  ``builtin_definition`` (by catalog id ``<form>-<version>``), ``validate_definition``, ``content_hash``,
  ``DefinitionError``
* interpreter: ``evaluate`` → ``Evaluation`` (with ``Message``), ``render_model``, ``present`` (both at once),
  ``parse_form_input``, ``adopt_suggestion``
* versions: ``diff_definitions`` → ``Change``, ``migrate_values`` → ``MigrationReport``
* FHIR: ``to_questionnaire``, ``from_questionnaire``, ``to_questionnaire_response``
* IG authors' Excel layout: ``from_excel_layout``
"""
from __future__ import annotations

from .definition import (
    BUILTIN_VERSIONS,
    FORMAT,
    builtin_catalog,
    builtin_definition,
    content_hash,
    definition_schema,
    load_catalog,
    validate_definition,
)
from .diff import Change, MigrationReport, diff_definitions, migrate_values
from .engine import Evaluation, Message, evaluate
from .errors import DefinitionError
from .excel import from_excel_layout
from .fhir import from_questionnaire, to_questionnaire, to_questionnaire_response, values_from_questionnaire_response
from .forminput import parse_form_input
from .present import Presented, adopt_suggestion, present
from .render import iter_fields, provenance_badge, render_model

__all__ = [
    "BUILTIN_VERSIONS",
    "FORMAT",
    "Change",
    "DefinitionError",
    "Evaluation",
    "Message",
    "MigrationReport",
    "Presented",
    "adopt_suggestion",
    "builtin_catalog",
    "builtin_definition",
    "content_hash",
    "definition_schema",
    "diff_definitions",
    "evaluate",
    "from_excel_layout",
    "from_questionnaire",
    "iter_fields",
    "load_catalog",
    "migrate_values",
    "parse_form_input",
    "present",
    "provenance_badge",
    "render_model",
    "to_questionnaire",
    "to_questionnaire_response",
    "values_from_questionnaire_response",
    "validate_definition",
]
