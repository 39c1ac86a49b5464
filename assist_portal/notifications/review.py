"""The confirmation review: exactly what will be sent, as a person reads it (a read; nothing is written here).

`review_build` turns a notification's stored draft into the page the physician confirms on: the items of medical
judgement first, then every other section grouped like the paper form (numbered by the form's link ids), dates as
2021年1月10日; for an amendment, the differences from the last confirmed revision; the medical-judgement items that
are empty (or hold only a suggestion) and need an explicit answer; whether the form's physician differs from the
one confirming; and a hash of what is shown, so the final click confirms exactly that and nothing else.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from formengine import present
from vocabulary import ids

# The explicit answers a physician gives for an empty medical-judgement item (stored with the revision).
ANSWER_UNKNOWN = "unknown"
ANSWER_NOT_APPLICABLE = "not_applicable"
ANSWER_ADOPT = "adopt"
ANSWER_LABELS = {ANSWER_UNKNOWN: "不明", ANSWER_NOT_APPLICABLE: "該当なし", ANSWER_ADOPT: "候補を採用"}


@dataclass
class Review:
    digest: str
    medical: list[dict] = field(default_factory=list)
    sections: list[dict] = field(default_factory=list)
    needs_answer: list[dict] = field(default_factory=list)
    diff: list[dict] = field(default_factory=list)
    amendment: bool = False
    physician_in_form: str = ""
    physician_confirming: str = ""
    physician_differs: bool = False
    evaluation: Any = None

    def shown(self) -> list[dict]:
        """What the physician saw, item by item (label and value as displayed): kept with the revision."""
        return [{"id": e["id"], "label": e["label"], "display": e["display"]}
                for block in (self.medical, *[s["entries"] for s in self.sections]) for e in block]


def _same_person(a: str, b: str) -> bool:
    norm = lambda s: re.sub(r"\s+", "", unicodedata.normalize("NFKC", s or ""))  # noqa: E731
    return bool(norm(a)) and norm(a) == norm(b)


def _entries(section: dict) -> list[dict]:
    """A section's fields and group rows as (label, display) lines, visible ones only."""
    out = []
    for entry in section["entries"]:
        if entry["kind"] == "group":
            for n, row in enumerate(r for r in entry["rows"] if r["filled"]):
                for cell in row["cells"]:
                    if cell["has_value"]:
                        out.append({"id": f"{entry['id']}[{n}].{cell['id'].rsplit('.', 1)[-1]}",
                                    "label": f"{entry['label']} {n + 1}件目 {cell['label']}",
                                    "display": cell["display"], "number": _number(entry.get("link_id", "")),
                                    "medical": False, "html_id": cell["html_id"]})
            continue
        if not entry["visible"]:
            continue
        out.append({"id": entry["id"], "label": entry["label"], "display": entry["display"] if entry["has_value"]
                    else "", "has_value": entry["has_value"], "number": _number(entry.get("link_id", "")),
                    "medical": entry["medical_judgement"], "html_id": entry["html_id"],
                    "suggestion": entry.get("suggestion"), "provenance": entry["provenance"]})
    return out


def _number(link_id: str) -> str:
    """The paper form's item number from an eInfectionReport link id (i1_5 → 5); '' when there is none."""
    m = re.fullmatch(r"i\d+_(\d+)", link_id or "")
    return m.group(1) if m else ""


def digest_of(definition_hash: str, values: dict) -> str:
    raw = json.dumps({"definition": definition_hash, "values": values}, ensure_ascii=False, sort_keys=True,
                     separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def review_build(notification, values: dict, user, *, today, previous=None, emr_suggestions=None) -> Review:
    """The review of `values` (the stored draft) for `user` confirming; `previous` is the last confirmed
    revision (an amendment shows what changed against it)."""
    defn = notification.definition.definition
    shown = present(defn, values, today=today, provenance=notification.provenance, stage="confirm")
    model = shown.model
    medical, sections = [], []
    for section in model["sections"]:
        lines = _entries(section)
        medical += [line for line in lines if line["medical"]]
        rest = [line for line in lines if not line["medical"] and line.get("has_value", True)]
        if rest:
            sections.append({"label": section["label"], "entries": rest})
    labels = {i["id"]: i for i in defn.get("items", [])}
    emr_suggestions = emr_suggestions or {}
    needs = []
    for line in medical:
        if line["has_value"]:
            continue
        suggestion = line.get("suggestion") or emr_suggestions.get(line["id"])
        code = suggestion.get("value") if isinstance(suggestion, dict) else None
        options = {v.get("code"): v.get("label") for v in labels.get(line["id"], {}).get("values", []) or []}
        suggested = options.get(code, code) if isinstance(code, str) else None
        needs.append({**line, "suggested": suggested, "suggested_code": code if suggested else None,
                      "field": f"answer-{line['id']}"})
    in_form = str(values.get(ids.REPORT_PHYSICIAN_NAME) or "")
    confirming = user.display_name or user.username
    diff = []
    if previous is not None:
        before = present(previous.definition.definition, previous.values, today=today).model
        old = {line["id"]: line for s in before["sections"] for line in _entries(s)}
        new = {line["id"]: line for s in model["sections"] for line in _entries(s)}
        for item_id in [*new, *[k for k in old if k not in new]]:
            a, b = old.get(item_id), new.get(item_id)
            before_text, after_text = (a or {}).get("display", ""), (b or {}).get("display", "")
            if before_text != after_text:
                diff.append({"label": (b or a)["label"], "before": before_text, "after": after_text})
    return Review(
        digest=digest_of(notification.definition.content_hash, values), medical=medical, sections=sections,
        needs_answer=needs, diff=diff, amendment=previous is not None, physician_in_form=in_form,
        physician_confirming=confirming, physician_differs=not _same_person(in_form, confirming),
        evaluation=shown.evaluation)
