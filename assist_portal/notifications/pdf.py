"""The confirmed notification as a PDF (for the chart, pulled by the connector; and for fax when HER-SYS is down).

reportlab's built-in Japanese CID font (HeiseiKakuGo-W5) needs no font file on the server.
"""
from __future__ import annotations

import io
from datetime import date
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from formengine import present

FONT = "HeiseiKakuGo-W5"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
_TEXT = ParagraphStyle("ja", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
_HEAD = ParagraphStyle("jah", parent=_TEXT, fontSize=14, leading=18)
_SECTION = ParagraphStyle("jas", parent=_TEXT, fontSize=11, leading=15)


def _p(text, style=None) -> Paragraph:
    """Values are data, never ReportLab markup (no <b>, <a>, <img> from what someone typed)."""
    return Paragraph(escape(str(text or "")), style or _TEXT)


def _rows(form: dict) -> list:
    story = []
    for section in form["sections"]:
        data = []
        for entry in section["entries"]:
            if entry["kind"] == "group":
                for n, row in enumerate(r for r in entry["rows"] if r["filled"]):
                    for cell in row["cells"]:
                        data.append([_p(f"{entry['label']} {n + 1}件目 {cell['label']}"), _p(cell["display"])])
            else:
                data.append([_p(entry["label"]), _p(entry["display"])])
        if not data:
            continue
        table = Table(data, colWidths=[70 * mm, 105 * mm])
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                                   ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story += [_p(section["label"], _SECTION), table, Spacer(1, 4 * mm)]
    return story


class RevisionPurged(Exception):
    """The retention purge erased the revision's values: there is nothing left to render."""


def revision_pdf(revision, hospital, today: date | None = None) -> bytes:
    """PDF of one confirmed revision exactly as it was sent (the values frozen with it, and the hash of the
    document sent to HER-SYS). Refuses a purged revision rather than rendering an empty form."""
    if revision.notification.purged_at or revision.payload.purged_at:
        raise RevisionPurged("the retention purge erased this revision")
    defn = revision.definition.definition
    form = present(defn, revision.values, today=today or timezone.localdate()).model
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title="発生届", leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm)
    head = [
        _p(revision.definition.heading, _HEAD),
        Paragraph("感染症の予防及び感染症の患者に対する医療に関する法律第12条第1項の規定により、以下のとおり届け出る。", _TEXT),
        _p(f"{hospital.name}　第{revision.number}版（{revision.get_kind_display()}）　確定 "
           f"{timezone.localtime(revision.confirmed_at):%Y-%m-%d %H:%M}　様式 {revision.definition.version}"),
        _p(f"送信文書 SHA-256 {revision.payload.sha256 or '（保存なし）'}"),
        Spacer(1, 4 * mm),
    ]
    doc.build(head + _rows(form))
    return buf.getvalue()
