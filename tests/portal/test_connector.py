"""The reference connector against a live server: push prints a launch URL; pull fetches document and PDF."""
import pytest

from connector.__main__ import main
from tests.conftest import DEMO_SAMPLES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_connector_push_and_pull(live_server, settings, hospital, physician, published, capsys, tmp_path,
                                 django_capture_on_commit_callbacks):
    settings.PUBLIC_BASE_URL = live_server.url
    published("2021-03")
    folder = DEMO_SAMPLES / "ss-mix2" / "110" / "000" / "1100000002"
    assert main(["--url", live_server.url, "--api-key", "key-h0001", "push", "--format", "ss-mix2",
                 str(folder)]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(live_server.url + "/launch/")
    assert main(["--url", live_server.url, "--api-key", "wrong", "push", "--format", "ss-mix2", str(folder)]) == 1
    # Confirm through the services, then pull.
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    extract = Extract.objects.get()
    n = services.notification_open_from_extract(extract, physician)
    values = dict(n.values, **{"report.diagnosis_class": "confirmed_patient"})
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_confirm(n, physician, values, n.lock_version)
    assert main(["--url", live_server.url, "--api-key", "key-h0001", "pull", "--out", str(tmp_path)]) == 0
    names = sorted(p.suffix for p in tmp_path.iterdir())
    assert names == [".json", ".pdf"]


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
