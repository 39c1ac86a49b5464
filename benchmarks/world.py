"""The benchmark's synthetic world: hospitals with API keys, a physician each (TOTP device), the published
form definition, confirmable value templates made from the demo EMR samples, and drafts ready to confirm.

Setup work here is never timed. It goes through the product's services where the benchmark measures what follows
(extracts are stored as the API stores them; drafts are opened by `notification_open_from_extract`).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vocabulary import ids

from .env import ROOT

DEMO_SAMPLES = ROOT / "demo" / "emr-samples"
DEFINITION_VERSION = "covid19-2021-03"  # a catalog id of vocabulary
API_KEY_PREFIX = "bench-key-"


@dataclass
class Site:
    hospital: Any
    physician: Any
    api_key: str


@dataclass
class Template:
    """A demo patient whose extract, once completed the way a clerk would, passes the confirm stage."""

    patient_id: str
    bundle: dict[str, Any]
    extract: dict[str, Any]  # mapping result: items, provenance, suggestions, warnings
    values: dict[str, Any]  # complete values to confirm


@dataclass
class World:
    sites: list[Site]
    definition: Any
    templates: list[Template] = field(default_factory=list)
    _serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_patient_ref(self, prefix: str) -> str:
        with self._lock:
            self._serial += 1
            return f"{prefix}{self._serial:07d}"


def fhir_bundles() -> dict[str, dict[str, Any]]:
    root = DEMO_SAMPLES / "fhir"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*.json"))}


def world_create(hospitals: int) -> World:
    """`hospitals` tenants H9001…, each with one physician, and the 2021-03 catalog published to all."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from assist_portal.accounts.connector_keys import connector_key_register
    from assist_portal.accounts.models import Hospital, User
    from assist_portal.central.services import definition_publish
    from assist_portal.formdefs.services import definition_import_builtin

    local_codes = json.loads((DEMO_SAMPLES / "local-codes.json").read_text(encoding="utf-8"))
    sites = []
    for i in range(1, hospitals + 1):
        code = f"H9{i:03d}"
        key = f"{API_KEY_PREFIX}{code}"
        # raw_push_enabled: the launch benchmark pushes FHIR bundles (mapping measured on the data-centre side).
        hospital = Hospital.objects.create(code=code, name=f"ベンチ総合病院{i:03d}", address="東京都千代田区霞が関１－２－２",
                                           phone="03-5253-1111", local_codes=local_codes, raw_push_enabled=True)
        connector_key_register(hospital, name="ベンチマーク用", secret=key)
        physician = User.objects.create_user(username=f"bench_dr_{i:03d}", password=f"unused-{key}-pw",
                                             role="physician", hospital=hospital, display_name=f"医師　{i:03d}")
        TOTPDevice.objects.create(user=physician, name="default", confirmed=True)
        sites.append(Site(hospital, physician, key))
    definition = definition_publish(definition_import_builtin(DEFINITION_VERSION))
    world = World(sites=sites, definition=definition)
    world.templates = templates_build(world)
    if not world.templates:
        raise RuntimeError("no demo patient could be completed to a confirmable notification")
    return world


def _complete(values: dict[str, Any]) -> dict[str, Any]:
    """What the clerk and physician add to an EMR pre-fill before confirming (as the portal tests do)."""
    out = dict(values)
    out[ids.REPORT_DIAGNOSIS_CLASS] = "confirmed_patient"
    out.setdefault(ids.PATIENT_RESIDENCE_ADDRESS, values.get(ids.PATIENT_ADDRESS) or "東京都千代田区霞が関１－２－２")
    return out


def templates_build(world: World) -> list[Template]:
    """Run `mapping` once per demo FHIR patient and keep the ones that confirm without errors."""
    import mapping
    from assist_portal.notifications.services import local_date, prefill_values
    from formengine import evaluate

    site = world.sites[0]
    codes = mapping.load_local_codes(site.hospital.local_codes or {})
    defn = world.definition.definition
    out = []
    for patient_id, bundle in fhir_bundles().items():
        result = mapping.extract_fhir(bundle, codes)
        pseudo = SimpleNamespace(items=result.get("items", {}), provenance=result.get("provenance", {}))
        values, provenance = prefill_values(pseudo, site.hospital, site.physician)
        evaluation = evaluate(defn, _complete(values), today=local_date(), provenance=provenance, stage="confirm")
        if evaluation.ok_to_confirm and evaluation.notifiable:
            out.append(Template(patient_id, bundle, result, _complete(values)))
    return out


def draft_create(world: World, site: Site, template: Template, patient_ref: str):
    """A pre-filled draft as after a connector push and a launch (extract stored, draft opened)."""
    from django.db import transaction

    from assist_portal.notifications.models import Extract
    from assist_portal.notifications.services import notification_open_from_extract

    with transaction.atomic():  # as inside launch_open (it locks the patient's cases)
        return _draft_create(site, template, patient_ref, Extract, notification_open_from_extract)


def _draft_create(site: Site, template: Template, patient_ref: str, Extract, open_from_extract):  # noqa: N803
    extract = Extract.objects.create(
        hospital=site.hospital, patient_ref=patient_ref, format="fhir",
        items=template.extract.get("items", {}), provenance=template.extract.get("provenance", {}),
        suggestions=template.extract.get("suggestions", {}), warnings=template.extract.get("warnings", []),
        payload_sha256="0" * 64,
    )
    return open_from_extract(extract, site.physician)


def confirm_values(notification, template: Template) -> dict[str, Any]:
    """The draft's values completed like the template (the physician's final form submission)."""
    values = dict(notification.values)
    values.update({k: v for k, v in template.values.items() if k not in values or values[k] in (None, "", [])})
    return _complete(values)


def signed_in_client(user):
    """A Django test client signed in with password + TOTP verified (the sign-in itself is not measured)."""
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user).first()
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def bundle_path(patient_id: str) -> Path:
    return DEMO_SAMPLES / "fhir" / f"{patient_id}.json"
