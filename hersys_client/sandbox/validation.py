"""Validation of incoming document Bundles, with Japanese diagnostics (→ 422 OperationOutcome).

Works on untrusted JSON: every access checks types, and the QuestionnaireResponse walk is iterative, so no input
can raise here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import vocabulary

from ..bundle import ITEM_DEFINITION_PREFIX, questionnaire_form_version

_REVISION = re.compile(r"[0-9]{1,9}")
#: Every shipped catalog (``<form>-<version>``). An accepted entry is a catalog id or a bare version (any form).
DEFAULT_ACCEPTED_VERSIONS = vocabulary.catalog_ids()
QR_STATUSES = ("completed", "amended", "stopped")
MAX_IDENTIFIER_LENGTH = 200


@dataclass(frozen=True)
class Issue:
    code: str  # FHIR issue-type: structure, required, value, not-supported, conflict ...
    diagnostics: str
    expression: str | None = None


@dataclass(frozen=True)
class Submission:
    identifier: str
    revision: int
    qr_status: str
    version: str
    form: str = ""


def bundle_key(bundle: Any) -> tuple[str | None, int | None]:
    """(identifier, revision) read leniently, for matching a replayed idempotency key."""
    if not isinstance(bundle, dict):
        return None, None
    ident = bundle.get("identifier")
    value = ident.get("value") if isinstance(ident, dict) else None
    meta = bundle.get("meta")
    version_id = meta.get("versionId") if isinstance(meta, dict) else None
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    revision = int(version_id) if isinstance(version_id, str) and _REVISION.fullmatch(version_id) else None
    return (value if isinstance(value, str) else None), revision


def validate_bundle(bundle: Any, accepted_versions: Iterable[str]) -> tuple[Submission | None, list[Issue]]:
    """Check a document Bundle against the contract; return the parsed submission or the issues found."""
    issues: list[Issue] = []
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None, [Issue("structure", "送信データが FHIR Bundle ではありません。", "Bundle")]
    if bundle.get("type") != "document":
        issues.append(Issue("value", "Bundle.type は document でなければなりません。", "Bundle.type"))

    identifier, revision = bundle_key(bundle)
    if not identifier or len(identifier) > MAX_IDENTIFIER_LENGTH:
        issues.append(Issue("required", "Bundle.identifier.value（届出の識別子）がないか不正です。", "Bundle.identifier"))
    if revision is None or revision < 1:
        issues.append(Issue("required", "Bundle.meta.versionId（版数）は 1 以上の整数でなければなりません。",
                            "Bundle.meta.versionId"))

    entries = bundle.get("entry")
    resources: list[dict[str, Any]] = []
    if isinstance(entries, list):
        resources = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if not resources or resources[0].get("resourceType") != "Composition":
        issues.append(Issue("structure", "Bundle の最初のエントリは Composition でなければなりません。", "Bundle.entry[0]"))

    qrs = [r for r in resources if r.get("resourceType") == "QuestionnaireResponse"]
    if len(qrs) != 1:
        issues.append(Issue("structure", "QuestionnaireResponse（届出内容）がちょうど 1 つ必要です。", "Bundle.entry"))
        return None, issues
    qr = qrs[0]

    qr_status = qr.get("status")
    if qr_status not in QR_STATUSES:
        issues.append(Issue("value", "QuestionnaireResponse.status は completed・amended・stopped のいずれかです。",
                            "QuestionnaireResponse.status"))
    form, version = questionnaire_form_version(qr.get("questionnaire"))
    # A withdrawal must stay possible after an item-set change and needs no complete content.
    if qr_status != "stopped":
        issues.extend(_content_issues(qr, form, version, list(accepted_versions)))
    if issues:
        return None, issues
    assert identifier is not None and revision is not None and isinstance(qr_status, str)
    return Submission(identifier, revision, qr_status, version or "", form or ""), []


def _accepts(accepted: list[str], form: str, version: str) -> bool:
    """An accepted entry is a catalog id (``<form>-<version>``) or a bare version, which accepts it in any form."""
    return version in accepted or vocabulary.catalog_id(form, version) in accepted


def _content_issues(qr: dict[str, Any], form: str | None, version: str | None, accepted: list[str]) -> list[Issue]:
    """The item set the destination requires for the form and version of the QR (from `vocabulary.item_set`)."""
    where = "QuestionnaireResponse.questionnaire"
    if version is None or form is None:
        return [Issue("required", "QuestionnaireResponse.questionnaire に様式と項目セットの版がありません"
                                  "（…/<様式>|<版> の形にしてください）。", where)]
    if not _accepts(accepted, form, version) or vocabulary.find(form, version) is None:
        return [Issue(
            "not-supported",
            f"様式「{form[:40]}」の項目セットの版「{version[:40]}」は現在受け付けていません"
            f"（受付中の版: {'、'.join(accepted)}）。最新の様式で入力し直してください。",
            where,
        )]
    answered = _answered_items(qr.get("item"))
    labels = vocabulary.item_labels(form, version)
    return [
        Issue(
            "required",
            f"必須項目「{labels.get(item_id, item_id)}」（{item_id}）が入力されていません。",
            f"QuestionnaireResponse.item.where(definition='{ITEM_DEFINITION_PREFIX}{item_id}')",
        )
        for item_id in vocabulary.item_set(form, version)
        if item_id not in answered
    ]


def _answered_items(items: Any) -> set[str]:
    """Item ids (from `definition`) that carry at least one non-empty answer, at any depth."""
    found: set[str] = set()
    stack: list[Any] = [items]
    while stack:
        node = stack.pop()
        if not isinstance(node, list):
            continue
        for item in node:
            if not isinstance(item, dict):
                continue
            answers = item.get("answer")
            if isinstance(answers, list):
                definition = item.get("definition")
                if isinstance(definition, str) and definition.startswith(ITEM_DEFINITION_PREFIX) and any(
                    _has_value(a) for a in answers
                ):
                    found.add(definition[len(ITEM_DEFINITION_PREFIX):])
                stack.extend(a.get("item") for a in answers if isinstance(a, dict))
            stack.append(item.get("item"))
    return found


def _has_value(answer: Any) -> bool:
    if not isinstance(answer, dict):
        return False
    for key, value in answer.items():
        if key.startswith("value") and value not in (None, "", [], {}):
            return True
    return False


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    out = []
    for issue in issues:
        entry: dict[str, Any] = {"severity": "error", "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = [issue.expression]
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}
