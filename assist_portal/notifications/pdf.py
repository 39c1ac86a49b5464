"""The notification as a PDF laid out like the paper form (別記様式, notifications.paper): for the chart (pulled by
the connector) and for fax or filing (downloaded by the hospital's staff from the form and status pages).

The Japanese font is embedded (a subset of IPAexGothic, Debian package fonts-ipaexfont-gothic; `PDF_FONT_PATH`),
so the PDF prints the same on every machine — a CID font reference would depend on the reader's fonts."""
from __future__ import annotations

import functools
import io
from datetime import date
from functools import lru_cache
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .paper import paper_form

FONT = "IPAexGothic"


class FontMissing(RuntimeError):
    pass


@lru_cache(maxsize=1)
def _styles() -> dict[str, ParagraphStyle]:
    path = settings.PDF_FONT_PATH
    try:
        pdfmetrics.registerFont(TTFont(FONT, path))  # TrueType: reportlab embeds the subset it uses
    except Exception as exc:  # noqa: BLE001 - any reason the font cannot be read
        raise FontMissing(f"PDFの日本語フォントを読み込めません: {path}（fonts-ipaexfont-gothic を導入してください）") from exc
    text = ParagraphStyle("ja", fontName=FONT, fontSize=8.5, leading=11, wordWrap="CJK")
    return {"text": text, "small": ParagraphStyle("jas", parent=text, fontSize=7.5, leading=9.5),
            "title": ParagraphStyle("jat", parent=text, fontSize=13, leading=17, alignment=1),
            "num": ParagraphStyle("jan", parent=text, alignment=1)}


def _p(text, style: str = "text") -> Paragraph:
    """Values are data, never ReportLab markup (no <b>, <a>, <img> from what someone typed)."""
    return Paragraph(escape(str(text or "")).replace("\n", "<br/>"), _styles()[style])


def _table(rows, widths) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=0)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-2, -1), colors.Color(0.95, 0.95, 0.95)),
                               ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]))
    return table


def paper_pdf(paper: dict) -> bytes:
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title=paper["title"], author="HER-SYS登録補助", leftMargin=14 * mm,
                            rightMargin=14 * mm, topMargin=12 * mm, bottomMargin=12 * mm)
    story = [_p(paper["title"] + "（別記様式）", "title"), Spacer(1, 2 * mm), _p(paper["addressee"]),
             _p(paper["legal"]), Spacer(1, 2 * mm)]
    header = [[_p(h["label"]), _p(h["value"])] for h in paper["header"]]
    if header:
        story += [_table(header, [52 * mm, 130 * mm]), Spacer(1, 2 * mm)]
    rows = [[_p(i["number"], "num"), _p(i["label"]), _p(i["value"])] for i in paper["items"]]
    story.append(_table(rows, [10 * mm, 62 * mm, 110 * mm]))
    if paper["extra"]:
        story += [Spacer(1, 2 * mm), _p("HER-SYSの追加項目", "text"),
                  _table([[_p(""), _p(i["label"]), _p(i["value"])] for i in paper["extra"]],
                         [10 * mm, 62 * mm, 110 * mm])]
    f = paper["footer"]
    if f["draft"]:
        foot = [[_p("確定"), _p("未確定の下書き（医師の確定前の内容です）")]]
    else:
        foot = [[_p("受付番号（HER-SYS ID）"), _p(f["receipt_id"] or "（受理前）")],
                [_p("確定した医師"), _p(f["confirmed_by"])],
                [_p("確定日時"), _p(f"{f['confirmed_at']}（第{f['revision']}版・{f['kind']}）")],
                [_p("送信文書 SHA-256"), _p(f["sha256"] or "（保存なし）", "small")]]
    foot.append([_p("様式"), _p(f"{paper['version']}　患者ID {paper['patient_ref']}")])
    story += [Spacer(1, 2 * mm), _table(foot, [52 * mm, 130 * mm])]
    # Every text in the embedded font, even the canvas's initial one (ReportLab still lists Helvetica, unused).
    doc.build(story, canvasmaker=functools.partial(Canvas, initialFontName=FONT, initialFontSize=8.5))
    return buf.getvalue()


class RevisionPurged(Exception):
    """The retention purge erased the revision's values: there is nothing left to render."""


def revision_pdf(revision, hospital, today: date | None = None) -> bytes:
    """PDF of one confirmed revision exactly as it was sent (its frozen values, its receipt, the hash of the
    document sent to HER-SYS). Refuses a purged revision rather than rendering an empty form."""
    if revision.notification.purged_at or revision.payload.purged_at:
        raise RevisionPurged("the retention purge erased this revision")
    receipt = revision.delivery.receipt_id if revision.delivery_id else ""
    return paper_pdf(paper_form(revision.notification, revision.values, revision=revision, receipt_id=receipt,
                                today=today or timezone.localdate()))
