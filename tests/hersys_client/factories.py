"""Test data: a minimal QuestionnaireResponse and document Bundle as the form engine would hand them over."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from hersys_client import build_document_bundle
from hersys_client.bundle import ITEM_DEFINITION_PREFIX, QUESTIONNAIRE_URL

ITEMS: dict[str, Any] = {
    "report.diagnosis_class": "confirmed_patient",
    "report.notification_target": ["age65_plus"],
    "report.physician_name": "山田 太郎",
    "patient.name": "高橋 健",
    "patient.name_kana": "タカハシ ケン",
    "patient.sex": "male",
    "patient.birth_date": "1942-07-21",
    "patient.address": "愛知県名古屋市中区栄３−５−１",
    "patient.postal_code": "4600008",
    "patient.phone": "092-8784-3725",
    "clinical.diagnosis_date": "2022-10-01",
}
FACILITY = {"name": "中央総合病院", "address": "愛知県名古屋市中区１−１", "phone": "052-000-0000", "code": "H0001"}


def make_qr(items: dict[str, Any], version: str = "2022-09") -> dict[str, Any]:
    qr_items = []
    for item_id, value in items.items():
        values = value if isinstance(value, list) else [value]
        answers = [{"valueCoding": {"code": v}} if item_id.endswith(("_class", "sex", "target")) else
                   {"valueString": str(v)} for v in values]
        qr_items.append({"linkId": item_id, "definition": ITEM_DEFINITION_PREFIX + item_id, "answer": answers})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{QUESTIONNAIRE_URL}|{version}",
        "status": "completed",
        "authored": "2022-10-01T10:00:00+09:00",
        "item": [{"linkId": "group_report", "item": qr_items}],
    }


def make_bundle(
    notification_id: str | None = None,
    revision: int = 1,
    status: str = "completed",
    items: dict[str, Any] | None = None,
    version: str = "2022-09",
) -> dict[str, Any]:
    values = dict(ITEMS if items is None else items)
    return build_document_bundle(
        notification_id=notification_id or str(uuid.uuid4()),
        revision=revision,
        status=status,  # type: ignore[arg-type]
        questionnaire_response=make_qr(values, version),
        items=values,
        facility=FACILITY,
        today=date(2022, 10, 1),
    )


def key(bundle: dict[str, Any]) -> str:
    """Idempotency key as the contract defines it: <notification uuid>:<revision>."""
    return f"{bundle['identifier']['value']}:{bundle['meta']['versionId']}"
