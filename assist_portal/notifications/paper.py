"""The paper form (別記様式) the physician knows, as one model for the print page and the PDF.

At the top: the addressee and the legal sentence, 報告年月日 and the physician, the hospital (the header items, link
ids ``i0_*``). Then the numbered items in the order of the paper form (eInfectionReport link ids ``i1_<n>``, a sub-item
``i1_<n>_<m>`` under its number; HER-SYS's own additions ``i2_*`` after them), dates as 2021年1月10日, codes as their
labels, the repeated tests as rows. At the foot: the receipt number, the confirming physician and time, the version
and the hash of the document sent (or 「未確定の下書き」)."""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.utils import timezone

from formengine import present
from jpinput import format_date_ja

LEGAL = "感染症の予防及び感染症の患者に対する医療に関する法律第12条第1項の規定により、以下のとおり届け出る。"
ADDRESSEE = "都道府県知事（保健所設置市長・特別区長）殿"


def _order(link_id: str) -> tuple:
    m = re.fullmatch(r"i(\d+)((?:_\d+)*)", link_id or "")
    if not m:
        return (9, 999)
    return (int(m.group(1)), *(int(x) for x in m.group(2).split("_") if x))


def _number(link_id: str) -> str:
    """i1_7 → 7, i1_7_1 → (7), i2_3 → '' (a HER-SYS addition, not on the paper form)."""
    m = re.fullmatch(r"i1_(\d+)(_\d+)*", link_id or "")
    if not m:
        return ""
    return m.group(1) if m.group(2) is None else f"（{m.group(1)}）"


def paper_form(notification, values: dict, *, revision=None, receipt_id: str = "", today: date | None = None
               ) -> dict[str, Any]:
    """The paper form of `values` (a revision's, or the draft's when `revision` is None)."""
    definition = revision.definition if revision is not None else notification.definition
    model = present(definition.definition, values, today=today or timezone.localdate()).model
    header, items = [], []
    for section in model["sections"]:
        for entry in section["entries"]:
            link = entry.get("link_id", "") or ""
            if entry["kind"] == "group":
                rows = [r for r in entry["rows"] if r["filled"]]
                lines = [" ／ ".join(f"{c['label']}：{c['display']}" for c in r["cells"] if c["has_value"])
                         for r in rows]
                items.append({"order": _order(link), "number": _number(link), "label": entry["label"],
                              "value": "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1)),
                              "extra": link.startswith("i2")})
                continue
            if not entry["visible"]:
                continue
            line = {"order": _order(link), "number": _number(link), "label": entry["label"],
                    "value": entry["display"] if entry["has_value"] else "", "extra": link.startswith("i2")}
            (header if link.startswith("i0_") else items).append(line)
    header.sort(key=lambda x: x["order"])
    items.sort(key=lambda x: x["order"])
    footer = {"draft": revision is None, "receipt_id": receipt_id}
    if revision is not None:
        confirmed = timezone.localtime(revision.confirmed_at)
        footer.update({
            "revision": revision.number, "kind": revision.get_kind_display(),
            "confirmed_by": str(revision.confirmed_by), "confirmed_at": f"{format_date_ja(confirmed.date())} "
                                                                        f"{confirmed:%H:%M}",
            "sha256": revision.payload.sha256 if revision.payload_id else "",
        })
    return {"title": definition.heading, "version": definition.version, "addressee": ADDRESSEE, "legal": LEGAL,
            "header": header, "items": [i for i in items if not i["extra"]],
            "extra": [i for i in items if i["extra"]], "footer": footer, "patient_ref": notification.patient_ref}


def paper_form_for(notification, today: date | None = None) -> dict[str, Any]:
    """What to print now: the newest confirmed revision as sent (with its receipt) when nothing changed since; the
    current draft otherwise (marked 未確定)."""
    revision = (notification.revisions.select_related("definition", "payload", "delivery", "confirmed_by")
                .order_by("-number").first())
    if revision is not None and not notification.has_unsent_changes and revision.kind != "stopped":
        receipt = revision.delivery.receipt_id if revision.delivery_id else ""
        return paper_form(notification, revision.values, revision=revision, receipt_id=receipt, today=today)
    return paper_form(notification, notification.values, today=today)
