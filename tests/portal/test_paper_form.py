"""Print and PDF like the paper form (別記様式): numbered items, 報告年月日 and the physician at the top, dates as 年月日,
the receipt number, the confirming physician and time; the PDF's Japanese font embedded (read back with poppler's
pdftotext and pdffonts). Downloadable by the hospital's staff only."""
import shutil
import subprocess

import pytest
from django.urls import reverse

from assist_portal.delivery.models import Delivery
from tests.portal.test_delivery_problems import confirmed

pytestmark = pytest.mark.django_db

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils (.ci/run installs it)")


@pytest.fixture
def accepted(hospital, physician, published, django_capture_on_commit_callbacks):
    published("2021-03")
    n, delivery = confirmed(hospital, physician, django_capture_on_commit_callbacks)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.ACCEPTED, receipt_id="HS-4711000042")
    return n


def pdf_text(tmp_path, content: bytes) -> tuple[str, str]:
    path = tmp_path / "n.pdf"
    path.write_bytes(content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True).stdout
    return text.decode("utf-8"), fonts.decode("utf-8")


@needs_poppler
def test_the_pdf_reads_like_the_paper_form_with_the_font_embedded(client, accepted, clerk, login, tmp_path):
    login(client, clerk)
    status = client.get(reverse("notifications:status", args=[accepted.uuid])).content.decode()
    form = client.get(reverse("notifications:form", args=[accepted.uuid])).content.decode()
    url = reverse("notifications:pdf", args=[accepted.uuid])
    assert f'href="{url}"' in status and f'href="{url}"' in form  # downloadable from both pages
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text, fonts = pdf_text(tmp_path, response.content)
    squeezed = "".join(text.split())
    for needle in ("HS-4711000042", "山田一郎", "報告年月日", "診断した医師の氏名", "当該者氏名", "高橋健",
                   "1942年7月21日", "受付番号", "確定した医師", "確定日時", "別記様式", "第12条第1項"):
        assert needle in squeezed, needle
    assert "1942-07-21" not in text
    assert squeezed.index("報告年月日") < squeezed.index("当該者氏名")  # the header first, then the numbered items
    # pdffonts: the Japanese font is embedded (the "emb" column; columns: … emb sub uni object ID). ReportLab
    # always lists Helvetica, one of the 14 standard fonts every reader has; anything else must be embedded.
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    japanese = [r for r in rows if r[0].endswith("+IPAexGothic")]
    assert japanese and all(r[-5] == "yes" for r in japanese), fonts
    assert all(r[-5] == "yes" for r in rows if r[0] != "Helvetica"), fonts


@needs_poppler
def test_the_connector_pdf_is_the_same_paper_form(client, accepted, tmp_path):
    response = client.get(f"/api/v1/notifications/{accepted.uuid}/document.pdf",
                          HTTP_AUTHORIZATION="Api-Key key-h0001")
    assert response.status_code == 200
    text, fonts = pdf_text(tmp_path, response.content)
    assert "HS-4711000042" in text and "IPAexGothic" in fonts


def test_the_print_page_is_the_paper_form(client, accepted, physician, login):
    login(client, physician)
    html = client.get(reverse("notifications:print", args=[accepted.uuid])).content.decode()
    assert "別記様式" in html and 'id="paper-receipt">HS-4711000042<' in html
    assert "1942年7月21日" in html and "1942-07-21" not in html
    assert '<td class="num">1</td><th scope="row">診断（検案）した者（死体）の類型（診断分類）</th>' in html
    assert html.index("報告年月日") < html.index("当該者氏名")
    assert "山田　一郎" in html


def test_a_draft_prints_marked_unconfirmed(client, hospital, clerk, published, login):
    published("2021-03")
    login(client, clerk)
    client.post(reverse("notifications:start"), {"patient_id": "P-1"})
    from assist_portal.notifications.models import Notification

    n = Notification.objects.get()
    assert "未確定の下書き" in client.get(reverse("notifications:print", args=[n.uuid])).content.decode()
    assert client.get(reverse("notifications:pdf", args=[n.uuid])).status_code == 200


def test_only_the_hospitals_staff_download_it(client, accepted, make_user, other_hospital, hospital_admin, login):
    url = reverse("notifications:pdf", args=[accepted.uuid])
    login(client, make_user("b_doc", "physician", other_hospital))
    assert client.get(url).status_code == 404
    login(client, hospital_admin)
    assert client.get(url).status_code == 403
