"""`connector print`: the paper form (別記様式) from the local extract, for fax when the data centre cannot be
reached — the legal duty stays met. Every item of the form is listed: what the EMR extract holds is printed,
the rest is left blank for the physician to write in by hand. No data centre, no Django."""
from __future__ import annotations

import io
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

import vocabulary
from vocabulary import ids

#: The connector config's facility keys and the items they fill.
FACILITY_ITEMS = {"name": ids.REPORT_FACILITY_NAME, "address": ids.REPORT_FACILITY_ADDRESS,
                  "phone": ids.REPORT_FACILITY_PHONE}

FONT = "HeiseiKakuGo-W5"


def _styles():
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    text = ParagraphStyle("ja", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
    return text, ParagraphStyle("jah", parent=text, fontSize=14, leading=18), \
        ParagraphStyle("jas", parent=text, fontSize=11, leading=15)


def _label(item: dict[str, Any], value: Any) -> str:
    options = {v.get("code"): v.get("label") for v in item.get("values") or [] if isinstance(v, dict)}
    if isinstance(value, list):
        return "、".join(str(options.get(v, v)) for v in value)
    return str(options.get(value, value)) if value not in (None, "") else ""


def paper_pdf(result: dict[str, Any], *, patient_id: str, facility: dict[str, str] | None = None,
              version: str | None = None, today: date | None = None) -> bytes:
    """The form's items with the extracted values (blank where the EMR holds nothing)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    text, head, section_style = _styles()

    def p(value, style=text):
        return Paragraph(escape(str(value or "")), style)  # values are data, never markup

    # `version` is a catalog id (<form>-<version>) or a bare version; default: the newest catalog of the first form
    version = vocabulary.resolve(version) if version else vocabulary.latest(vocabulary.form_keys()[0])
    catalog = vocabulary.catalog(version)
    values = dict(result.get("items", {}))
    for key, value in (facility or {}).items():
        if key in FACILITY_ITEMS:
            values.setdefault(FACILITY_ITEMS[key], value)
    values.setdefault(ids.REPORT_REPORT_DATE, (today or date.today()).isoformat())
    story = [p(f"{catalog.get('disease', '')} 発生届（別記様式）", head),
             p(f"電子カルテの抽出から作成した下書きです（患者ID {patient_id}、様式 {version}）。空欄は医師が記入し、"
               "内容を確認・署名のうえ保健所へFAXしてください。"), Spacer(1, 4 * mm)]
    items = catalog.get("items", [])
    for section in catalog.get("sections", []):
        rows = []
        for item in items:
            if item.get("section") != section.get("id") or item["id"].startswith("tests."):
                continue
            rows.append([p(item.get("label", item["id"])), p(_label(item, values.get(item["id"])))])
        if any(i["id"].startswith("tests.") and i.get("section") == section.get("id") for i in items):
            fields = [i for i in items if i["id"].startswith("tests.")]
            tests = values.get("tests") or []
            for n in range(max(len(tests), 1)):
                row = tests[n] if n < len(tests) else {}
                for item in fields:
                    rows.append([p(f"検査{n + 1}：{item.get('label', item['id'])}"),
                                 p(_label(item, row.get(item["id"].split(".", 1)[1])))])
        if not rows:
            continue
        story.append(p(section.get("label", section.get("id", "")), section_style))
        table = Table(rows, colWidths=[70 * mm, 105 * mm])
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("ROWBACKGROUNDS", (0, 0), (-1, -1), [colors.white, colors.whitesmoke])]))
        story += [table, Spacer(1, 3 * mm)]
    if result.get("warnings"):
        story.append(p("抽出時の注意", section_style))
        story += [p("・" + str(w)) for w in result["warnings"]]
    story += [Spacer(1, 8 * mm), p("診断した医師の署名：＿＿＿＿＿＿＿＿＿＿＿＿　　記入日：＿＿＿＿年＿＿月＿＿日")]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title="発生届（別記様式）", leftMargin=15 * mm, rightMargin=15 * mm,
                      topMargin=15 * mm, bottomMargin=15 * mm).build(story)
    return buffer.getvalue()
