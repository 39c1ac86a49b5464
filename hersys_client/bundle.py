"""Build the FHIR R4 document Bundle sent to HER-SYS (docs/contracts.md §3).

Data minimisation (DESIGN §7, study spec 別紙1 ②): only HER-SYS items leave the data centre. The Patient carries
exactly name/kana/sex/birth date/address/postal code/phone from the item values (no hospital patient id), the
Practitioner only the physician's name, the Organization only the facility's name/address/phone/code, and the
QuestionnaireResponse is copied field by field through a whitelist.

The builder is deterministic: the same arguments (with `today`) give the same Bundle, and the resources' urn:uuid
fullUrls are derived from the notification id, so a rebuilt retry is byte-for-byte the original request.
"""

from __future__ import annotations

import re
import uuid
from copy import deepcopy
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import vocabulary
from vocabulary import ids

IDENTIFIER_SYSTEM = "urn:hersys-assist:notification"
ITEM_DEFINITION_PREFIX = "urn:hersys-assist:item:"
#: Questionnaire canonicals are ``<QUESTIONNAIRE_BASE><form>|<version>`` (see `questionnaire_canonical`).
QUESTIONNAIRE_BASE = "http://hersys-assist.jp/fhir/Questionnaire/"
#: The URL used before forms had keys: ``hersys-<form>``, still accepted (`questionnaire_form_version`).
LEGACY_URL_PREFIX = "hersys-"
QUESTIONNAIRE_URL = f"{QUESTIONNAIRE_BASE}{LEGACY_URL_PREFIX}{ids.FORM_COVID19}"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
JP_CORE = "http://jpfhir.jp/fhir/core/StructureDefinition/"
MEDICAL_INSTITUTION_CODE_SYSTEM = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no"
FACILITY_CODE_SYSTEM = "urn:hersys-assist:facility"
JST = timezone(timedelta(hours=9))

Status = Literal["completed", "amended", "stopped"]
_COMPOSITION_STATUS = {"completed": "final", "amended": "amended", "stopped": "amended"}
_GENDER = {ids.SEX_MALE: "male", ids.SEX_FEMALE: "female"}
_NAMESPACE = uuid.UUID("6f1c2a53-8d0e-4c55-9a43-1b7e0f3d2c11")  # fixed: fullUrls derive from it

# QuestionnaireResponse whitelist (anything else, e.g. extensions or contained resources, stays home).
_QR_KEYS = ("resourceType", "id", "meta", "questionnaire", "status", "authored", "item")
_QR_ITEM_KEYS = ("linkId", "definition", "text", "answer", "item")
_ANSWER_VALUE_KEYS = (
    "valueBoolean", "valueDecimal", "valueInteger", "valueDate", "valueDateTime", "valueTime", "valueString",
    "valueUri", "valueCoding", "valueQuantity",
)


def questionnaire_canonical(form: str, version: str) -> str:
    """The canonical a QuestionnaireResponse points at: ``<QUESTIONNAIRE_BASE><form>|<version>``."""
    return f"{QUESTIONNAIRE_BASE}{form}|{version}"


def questionnaire_form_version(canonical: Any) -> tuple[str | None, str | None]:
    """(form, version) of a Questionnaire canonical ``…/<form>|<version>``; the legacy ``…/hersys-<form>|<version>``
    gives the same. Lenient (untrusted input): None for what is missing."""
    if not isinstance(canonical, str) or "|" not in canonical:
        return None, None
    url, version = canonical.rsplit("|", 1)
    segment = url.rstrip("/").rsplit("/", 1)[-1].strip()
    if segment.startswith(LEGACY_URL_PREFIX):
        segment = segment[len(LEGACY_URL_PREFIX):]
    return (segment or None), (version.strip() or None)


def _document_type(form: str | None, version: str | None) -> tuple[str, str]:
    """(code, Japanese title) of the Composition for a form: "<form>-notification", "<disease> 発生届"."""
    found = vocabulary.find(form, version) if form and version else None
    if found is None and form in vocabulary.form_keys():
        found = vocabulary.latest(form)
    if found is None:
        return "notification", "発生届"
    return f"{form}-notification", f"{vocabulary.disease(found)} 発生届"


def build_document_bundle(
    *,
    notification_id: str,
    revision: int,
    status: Status,
    questionnaire_response: dict[str, Any],
    items: dict[str, Any],
    facility: dict[str, Any],
    today: date | None = None,
    document_title: str | None = None,
) -> dict[str, Any]:
    """Return the document Bundle for one revision of one notification.

    `questionnaire_response` is the form engine's QR (its `questionnaire` is "<url>/<form>|<item-set version>",
    see `questionnaire_canonical`; the legacy "…/hersys-<form>|<version>" works too); every answered item must
    carry `definition = "urn:hersys-assist:item:<item id>"`. `items` are the flat item values (contracts §1);
    `facility` is {name, address, phone, code}. The Composition's type and title follow the form ("<disease>
    発生届" from its catalog) unless `document_title` is given. Raises ValueError on a broken contract.
    """
    if status not in _COMPOSITION_STATUS:
        raise ValueError(f"status must be completed, amended or stopped, not {status!r}")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise ValueError("revision must be a positive int")
    if not isinstance(notification_id, str) or not notification_id.strip():
        raise ValueError("notification_id is required")
    if not isinstance(questionnaire_response, dict) or (
        questionnaire_response.get("resourceType") != "QuestionnaireResponse"
    ):
        raise ValueError("questionnaire_response must be a QuestionnaireResponse")
    if not isinstance(questionnaire_response.get("questionnaire"), str) or "|" not in (
        questionnaire_response["questionnaire"]
    ):
        raise ValueError('QuestionnaireResponse.questionnaire must be "<canonical url>|<item-set version>"')

    if today is None:
        now = datetime.now(JST).replace(microsecond=0)
        timestamp, today = now.isoformat(), now.date()
    else:
        timestamp = f"{today.isoformat()}T00:00:00+09:00"

    doc_code, doc_title = _document_type(*questionnaire_form_version(questionnaire_response["questionnaire"]))
    doc_title = document_title or doc_title
    urls = {role: _urn(notification_id, role) for role in ("Composition", "Patient", "Practitioner",
                                                             "Organization", "QuestionnaireResponse")}
    patient = _patient(items)
    practitioner = _practitioner(items)
    organization = _organization(facility)
    qr = _questionnaire_response(questionnaire_response, status)
    qr["subject"] = {"reference": urls["Patient"]}
    qr["author"] = {"reference": urls["Practitioner"]}

    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "status": _COMPOSITION_STATUS[status],
        "type": {
            "coding": [
                {
                    "system": "urn:hersys-assist:document-type",
                    "code": doc_code,
                    "display": doc_title,
                }
            ]
        },
        "subject": {"reference": urls["Patient"]},
        "date": today.isoformat(),
        "author": [{"reference": urls["Practitioner"]}, {"reference": urls["Organization"]}],
        "custodian": {"reference": urls["Organization"]},
        "title": doc_title,
        "section": [
            {
                "title": "届出内容",
                "entry": [{"reference": urls["QuestionnaireResponse"]}],
            }
        ],
    }
    resources = [
        ("Composition", composition),
        ("Patient", patient),
        ("Practitioner", practitioner),
        ("Organization", organization),
        ("QuestionnaireResponse", qr),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"versionId": str(revision)},
        "identifier": {"system": IDENTIFIER_SYSTEM, "value": notification_id},
        "type": "document",
        "timestamp": timestamp,
        "entry": [{"fullUrl": urls[role], "resource": resource} for role, resource in resources],
    }


def _urn(notification_id: str, role: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_NAMESPACE, f"{notification_id}/{role}"))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _human_name(text: str, representation: str) -> dict[str, Any]:
    """JP Core HumanName: family/given split on the first (half- or full-width) space; text is kept as typed."""
    name: dict[str, Any] = {
        "extension": [{"url": EN_REPRESENTATION, "valueCode": representation}],
        "use": "official",
        "text": text,
    }
    parts = re.split(r"[ \u3000]+", text, maxsplit=1)
    if len(parts) == 2 and parts[0] and parts[1]:
        name["family"] = parts[0]
        name["given"] = [parts[1]]
    return name


def _patient(items: dict[str, Any]) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "meta": {"profile": [JP_CORE + "JP_Patient"]}}
    names = []
    if name := _text(items.get(ids.PATIENT_NAME)):
        names.append(_human_name(name, "IDE"))
    if kana := _text(items.get(ids.PATIENT_NAME_KANA)):
        names.append(_human_name(kana, "SYL"))
    if names:
        patient["name"] = names
    sex = items.get(ids.PATIENT_SEX)
    if sex is not None:
        patient["gender"] = _GENDER.get(str(sex), "unknown")
    if birth := _text(items.get(ids.PATIENT_BIRTH_DATE)):
        patient["birthDate"] = birth
    address: dict[str, Any] = {}
    if text := _text(items.get(ids.PATIENT_ADDRESS)):
        address["text"] = text
    if postal := _text(items.get(ids.PATIENT_POSTAL_CODE)):
        address["postalCode"] = postal
    if address:
        patient["address"] = [{**address, "country": "JP"}]
    if phone := _text(items.get(ids.PATIENT_PHONE)):
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "home"}]
    return patient


def _practitioner(items: dict[str, Any]) -> dict[str, Any]:
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "meta": {"profile": [JP_CORE + "JP_Practitioner"]},
    }
    if name := _text(items.get(ids.REPORT_PHYSICIAN_NAME)):
        practitioner["name"] = [_human_name(name, "IDE")]
    return practitioner


def _organization(facility: dict[str, Any]) -> dict[str, Any]:
    org: dict[str, Any] = {"resourceType": "Organization", "meta": {"profile": [JP_CORE + "JP_Organization"]}}
    if code := _text(facility.get("code")):
        # A 10-digit code is the national medical institution code; anything else is our own facility code.
        system = MEDICAL_INSTITUTION_CODE_SYSTEM if re.fullmatch(r"\d{10}", code) else FACILITY_CODE_SYSTEM
        org["identifier"] = [{"system": system, "value": code}]
    if name := _text(facility.get("name")):
        org["name"] = name
    if phone := _text(facility.get("phone")):
        org["telecom"] = [{"system": "phone", "value": phone, "use": "work"}]
    if address := _text(facility.get("address")):
        org["address"] = [{"text": address, "country": "JP"}]
    return org


def _questionnaire_response(source: dict[str, Any], status: str) -> dict[str, Any]:
    qr = {k: deepcopy(source[k]) for k in _QR_KEYS if k in source and k != "item"}
    qr["status"] = status
    if "item" in source:
        qr["item"] = _qr_items(source["item"], path="item")
    return qr


def _qr_items(items: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ValueError(f"QuestionnaireResponse.{path} must be a list")
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"QuestionnaireResponse.{where} must be an object")
        copy: dict[str, Any] = {k: deepcopy(item[k]) for k in ("linkId", "definition", "text") if k in item}
        if "answer" in item:
            definition = item.get("definition")
            if not isinstance(definition, str) or not definition.startswith(ITEM_DEFINITION_PREFIX):
                raise ValueError(
                    f"QuestionnaireResponse.{where} (linkId {item.get('linkId')!r}) has an answer but no "
                    f"definition {ITEM_DEFINITION_PREFIX}<item id>"
                )
            if not isinstance(item["answer"], list):
                raise ValueError(f"QuestionnaireResponse.{where}.answer must be a list")
            answers = []
            for j, answer in enumerate(item["answer"]):
                if not isinstance(answer, dict):
                    raise ValueError(f"QuestionnaireResponse.{where}.answer[{j}] must be an object")
                a = {k: deepcopy(answer[k]) for k in _ANSWER_VALUE_KEYS if k in answer}
                if "item" in answer:
                    a["item"] = _qr_items(answer["item"], f"{where}.answer[{j}].item")
                answers.append(a)
            copy["answer"] = answers
        if "item" in item:
            copy["item"] = _qr_items(item["item"], f"{where}.item")
        out.append(copy)
    return out


__all__ = ["build_document_bundle", "questionnaire_canonical", "questionnaire_form_version", "IDENTIFIER_SYSTEM",
           "ITEM_DEFINITION_PREFIX", "QUESTIONNAIRE_BASE", "QUESTIONNAIRE_URL"]
