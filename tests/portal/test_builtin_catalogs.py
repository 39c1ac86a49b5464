"""The central admin's built-in catalogs are vocabulary's catalog ids; importing one names the draft with the
catalog's version. The demo seed gives H0001 its DWH profile from demo/ (mapping ships none)."""
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

import vocabulary
from assist_portal.formdefs.models import FormDefinition

pytestmark = [pytest.mark.django_db]


def test_the_list_offers_every_catalog_id_and_imports_by_id(client, central_admin, login):
    login(client, central_admin)
    html = client.get(reverse("central:list")).content.decode()
    for catalog_id in vocabulary.catalog_ids():
        assert catalog_id in html
    response = client.post(reverse("central:new"), {"source": "builtin", "version": "covid19-2022-09"})
    assert response.status_code == 302
    draft = FormDefinition.objects.get()
    assert draft.version == "2022-09" and draft.definition["form"] == "covid19"


def test_an_unknown_catalog_id_is_refused_in_japanese(client, central_admin, login):
    login(client, central_admin)
    response = client.post(reverse("central:new"), {"source": "builtin", "version": "covid19-2099-01"},
                           follow=True)
    assert "covid19-2099-01" in response.content.decode() and "ありません" in response.content.decode()
    assert not FormDefinition.objects.exists()


def test_seed_demo_gives_the_demo_hospital_its_csv_profile(settings, tmp_path):
    from assist_portal.accounts.models import Hospital
    from tests.conftest import ROOT

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    hospital = Hospital.objects.get(code="H0001")
    shipped = json.loads((ROOT / "demo" / "profiles" / "H0001.json").read_text(encoding="utf-8"))
    assert hospital.csv_profile == shipped
    assert FormDefinition.objects.get(status="published").version == "2021-03"
    hospital.csv_profile = {"columns": {}, "edited": True}
    hospital.save()
    call_command("seed_demo")  # an admin's edit survives a re-seed
    hospital.refresh_from_db()
    assert hospital.csv_profile == {"columns": {}, "edited": True}
