"""The weaknesses of the security review: each hostile input answers 400 with a clear (Japanese) message, never
500; HSTS and SSL redirect from the environment; the OpenAPI schema declares its authentication, `since` and its
error answers."""
import json
import os
import subprocess
import sys

import pytest
from django.urls import reverse

from assist_portal.audit.models import AuditEvent
from tests.conftest import DEMO_SAMPLES, ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.security]

KEY = "HTTP_AUTHORIZATION"


def api_post(client, text: str, key="key-h0001"):
    return client.post("/api/v1/extracts", data=text.encode("utf-8"), content_type="application/json",
                       **{KEY: f"Api-Key {key}"})


def bundle_text(patient="1100000002") -> str:
    return (DEMO_SAMPLES / "fhir" / f"{patient}.json").read_text(encoding="utf-8")


def fhir_body(bundle: str) -> str:
    return '{"patient_id": "1100000002", "format": "fhir", "bundle": ' + bundle + "}"


@pytest.mark.parametrize("where", ["value", "key", "csv", "path"])
def test_a_lone_surrogate_anywhere_in_a_push_is_a_400(client, hospital, published, where):
    published("2021-03")
    if where == "value":
        body = fhir_body(bundle_text().replace('"family"', '"family": "\\ud800", "x_family"', 1))
    elif where == "key":
        body = '{"patient_id": "1100000002", "format": "fhir", "bundle": {"resourceType": "Bundle", "\\udfff": 1}}'
    elif where == "csv":
        body = '{"patient_id": "1100000002", "format": "csv", "csv": "id,name\\n1,\\ud800\\n"}'
    else:
        body = '{"patient_id": "p1", "format": "ss-mix2", "files": [{"path": "a\\ud800", "data_base64": "QQ=="}]}'
    response = api_post(client, body)
    assert response.status_code == 400, response.content[:300]
    assert "文字" in response.json()["detail"]
    assert not AuditEvent.objects.filter(action="extract.receive").exists()


def test_a_properly_paired_surrogate_escape_is_accepted(client, hospital, published):
    """An emoji written as a JSON surrogate pair (\\ud83d\\ude00) is a real character: not refused."""
    published("2021-03")
    hospital.raw_push_enabled = True
    hospital.save()
    body = fhir_body(bundle_text().replace('"family"', '"x_note": "\\ud83d\\ude00", "family"', 1))
    assert api_post(client, body).status_code == 201


@pytest.mark.parametrize("since", ["2022-09-26T09:00:00+16:00", "2022-09-26T09:00:00-23:59", "2022-09-26T09:00:00+14:01",
                                   "2022-13-45T00:00:00+09:00", "2022-09-26T09:00:00\x00", "yesterday",
                                   "2022-09-26T09:00:00+09:00" + "0" * 5000])
def test_feed_since_out_of_range_is_a_400(client, hospital, since):
    response = client.get("/api/v1/notifications", {"since": since}, **{KEY: "Api-Key key-h0001"})
    assert response.status_code == 400
    assert "since" in json.dumps(response.json(), ensure_ascii=False)


@pytest.mark.parametrize("since", ["2022-09-26T09:00:00+09:00", "2022-09-26T09:00:00-12:00",
                                   "2022-09-26T09:00:00+14:00", "2022-09-26T00:00:00Z", "2022-09-26T09:00:00"])
def test_feed_since_in_range_is_accepted(client, hospital, since):
    assert client.get("/api/v1/notifications", {"since": since}, **{KEY: "Api-Key key-h0001"}).status_code == 200


def test_deeply_nested_json_in_every_central_json_field_is_a_400(client, hospital, central_admin, login, published):
    published("2021-03")
    login(client, central_admin)
    deep = "[" * 100000 + "]" * 100000
    client.post(reverse("central:new"), {"source": "builtin", "version": "2022-09"})
    from assist_portal.formdefs.models import FormDefinition

    draft = FormDefinition.objects.get(status="draft")
    item = draft.definition["items"][0]["id"]
    mapping_url = reverse("central:hospital-mapping", args=[hospital.pk])
    for url, data in (
        (mapping_url, {"local_codes": deep, "csv_profile": "{}"}),
        (mapping_url, {"local_codes": "{}", "csv_profile": deep}),
        (reverse("central:item-edit", args=[draft.pk, item]), {"label": "x", "visible_when": deep}),
    ):
        response = client.post(url, data)
        assert response.status_code == 400 and "入れ子" in response.content.decode(), url
    rules = client.post(reverse("central:rules", args=[draft.pk]), {"rules": deep}, follow=True)
    assert "入れ子" in rules.content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = client.post(reverse("central:new"), {"source": "questionnaire",
                                                  "file": SimpleUploadedFile("q.json", deep.encode())}, follow=True)
    assert "入れ子" in upload.content.decode()


@pytest.mark.parametrize("codes,profile", [
    ("{}", "[1,2]"), ("[1,2]", "{}"), ('{"lab": [1]}', "{}"), ("{}", '{"columns": [1, 2]}'),
    ("{}", '{"columns": {"patient.name": 5}}'), ("{}", "1e999999"), ("{}", '"text"'), ('{"lab": {"x": [1]}}', "{}"),
])
def test_malformed_mapping_tables_are_a_400(client, hospital, central_admin, login, codes, profile):
    login(client, central_admin)
    response = client.post(reverse("central:hospital-mapping", args=[hospital.pk]),
                           {"local_codes": codes, "csv_profile": profile})
    assert response.status_code == 400 and "保存できませんでした" in response.content.decode()
    hospital.refresh_from_db()
    assert isinstance(hospital.local_codes, dict) and hospital.csv_profile == {}


def test_non_ascii_digits_and_words_as_ids_are_a_400_or_404(client, hospital, central_admin, login, published):
    published("2021-03")
    login(client, central_admin)
    for value in ("²", "١٢", "abc", "1\x00"):
        for field in ("unlock", "reset"):
            assert client.post(reverse("central:users"), {field: value}).status_code == 404
        created = client.post(reverse("central:users"), {"username": "x", "email": "x@example.jp",
                                                         "role": "hospital_admin", "hospital": value})
        assert created.status_code == 400
    client.post(reverse("central:new"), {"source": "builtin", "version": "2022-09"})
    from assist_portal.formdefs.models import FormDefinition

    draft = FormDefinition.objects.get(status="draft")
    for value in ("²", "abc", "\x00"):
        response = client.post(reverse("central:publish", args=[draft.pk]), {"scope": "subset", "hospitals": [value]})
        assert response.status_code in (302, 400)
    draft.refresh_from_db()
    assert draft.status == "draft"


@pytest.mark.parametrize("query", [
    {"since": "2024-13-45"}, {"until": "2024-02-30"}, {"since": "2024-01-01\x00"}, {"hospital": "H0001\x00"},
    {"hospital": "x" * 300}, {"since": "²⁰²⁴-01-01"},
])
def test_bad_audit_export_filters_are_a_400(client, central_admin, login, query):
    login(client, central_admin)
    response = client.get(reverse("central:audit-export"), query)
    assert response.status_code == 400 and "正しくありません" in response.content.decode()
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_good_audit_export_filters_still_work(client, central_admin, login):
    login(client, central_admin)
    response = client.get(reverse("central:audit-export"), {"since": "2024-01-01", "until": "2099-12-31",
                                                            "hospital": "H0001"})
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="audit.export").detail["filters"] == {
        "since": "2024-01-01", "until": "2099-12-31", "hospital": "H0001"}


@pytest.mark.parametrize("status", ["\x00", "nope", "x" * 500])
def test_bad_delivery_filters_are_a_400(client, central_admin, login, status):
    login(client, central_admin)
    response = client.get(reverse("central:deliveries"), {"status": status})
    assert response.status_code == 400 and "正しくありません" in response.content.decode()


def test_demo_launch_with_an_unknown_format_is_a_400(client, hospital, physician, login, settings, published):
    settings.DEMO_MODE = True
    published("2021-03")
    login(client, physician)
    for fmt in ("nope", "", "\x00", "../fhir"):
        response = client.post(reverse("notifications:demo-launch"), {"patient_id": "1100000002", "format": fmt})
        assert response.status_code == 400 and "形式" in response.content.decode(), fmt


def _settings_in_subprocess(env: dict) -> dict:
    code = ("import json, django, os; os.environ['DJANGO_SETTINGS_MODULE']='assist_portal.settings'; django.setup();"
            "from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in ("
            "'SECURE_HSTS_SECONDS','SECURE_HSTS_INCLUDE_SUBDOMAINS','SECURE_HSTS_PRELOAD','SECURE_SSL_REDIRECT',"
            "'SECURE_PROXY_SSL_HEADER','SECURE_REDIRECT_EXEMPT','SESSION_COOKIE_SECURE')}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_SECURE", "DJANGO_HSTS"))}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hsts_and_ssl_redirect_come_from_the_environment():
    default = _settings_in_subprocess({})
    assert default["SECURE_HSTS_SECONDS"] == 0 and default["SECURE_SSL_REDIRECT"] is False
    assert default["SECURE_PROXY_SSL_HEADER"] is None
    on = _settings_in_subprocess({"DJANGO_SECURE_SSL_REDIRECT": "on", "DJANGO_SECURE_HSTS_SECONDS": "31536000",
                                  "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "on", "DJANGO_SECURE_HSTS_PRELOAD": "on",
                                  "DJANGO_SECURE_PROXY_SSL_HEADER": "on"})
    assert on["SECURE_SSL_REDIRECT"] is True and on["SECURE_HSTS_SECONDS"] == 31536000
    assert on["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and on["SECURE_HSTS_PRELOAD"] is True
    assert on["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert on["SESSION_COOKIE_SECURE"] is True  # HTTPS only implies secure cookies
    assert any("healthz" in pattern for pattern in on["SECURE_REDIRECT_EXEMPT"])


def test_hsts_and_redirect_are_sent_when_switched_on(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    redirect = client.get("/accounts/login/")
    assert redirect.status_code == 301 and redirect["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200  # the load balancer's probe stays on plain HTTP
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000"


def test_the_openapi_schema_declares_authentication_since_and_errors(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    schemes = schema["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"
    assert "Api-Key" in scheme["description"]
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert operations
    for path, method, op in operations:
        assert op.get("security") == [{name: []}], (path, method)
        for code in ("400", "401"):
            assert code in op["responses"], (path, method, code)
            content = op["responses"][code]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/Error"}
    feed = schema["paths"]["/api/v1/notifications"]["get"]
    (since,) = [p for p in feed["parameters"] if p["name"] == "since"]
    assert since["in"] == "query" and since["schema"]["format"] == "date-time" and not since.get("required")
    assert "413" in schema["paths"]["/api/v1/extracts"]["post"]["responses"]
    assert schema["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"
