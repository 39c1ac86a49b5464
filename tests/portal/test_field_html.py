"""The form's fields are printed by notifications/field_html.py (issue 13: the per-field template include was three
quarters of the form page's CPU). The markup must stay what the template printed — the same elements, attributes,
aria wiring, labels and texts, the same escaping — because axe-core, the browser tests and the page's scripts read
it. The former template (`field_html_reference/`, frozen as it was when the include was replaced) renders every
field of real render models beside the new code, and both must give the same HTML up to runs of whitespace.

When the field markup changes on purpose, change field_html.py and the reference together."""
from __future__ import annotations

import copy
import json
import re
from datetime import date
from pathlib import Path

import pytest
from django.template import Context, Engine

import mapping
import vocabulary
from assist_portal.notifications.field_html import field_html
from formengine import builtin_definition, evaluate, iter_fields, render_model

REFERENCE = Path(__file__).parent / "field_html_reference"
SAMPLES = Path(__file__).resolve().parents[2] / "demo" / "emr-samples"
TODAY = date(2022, 10, 5)
HOSTILE = "<script>alert('x')</script> \"引用\" & ＜全角＞"


@pytest.fixture(scope="module")
def reference():
    templates = {f"notifications/{p.name}": p.read_text(encoding="utf-8") for p in REFERENCE.glob("*.html")}
    engine = Engine(loaders=[("django.template.loaders.locmem.Loader", templates)],
                    libraries={"ja_format": "assist_portal.notifications.templatetags.ja_format"})
    return engine.get_template("notifications/_field.html")


def _norm(html: str) -> str:
    return re.sub(r"\s+", " ", str(html)).strip()


def _emr_values():
    codes = mapping.load_local_codes(json.loads((SAMPLES / "local-codes.json").read_text(encoding="utf-8")))
    for path in sorted((SAMPLES / "fhir").glob("*.json")):
        result = mapping.extract_fhir(json.loads(path.read_text(encoding="utf-8")), codes)
        yield result.get("items", {}), result.get("provenance", {})


def _hostile(defn, values):
    """Every text-like item holds markup and quotes; enums hold codes that are not in the value set."""
    out = copy.deepcopy(values)
    for item in defn.get("items", []):
        if item.get("group"):
            continue
        if item["type"] in ("text", "kana", "phone", "postal_code", "integer"):
            out[item["id"]] = HOSTILE
        elif item["type"] in ("enum", "prefecture"):
            out.setdefault(item["id"], "<b>unknown\"code</b>")
    return out


def _models():
    for catalog_id in vocabulary.catalog_ids():
        defn = builtin_definition(catalog_id)
        cases = [({}, {}), *list(_emr_values())]
        cases.append((_hostile(defn, cases[1][0]), {k: "typed:<x>\"" for k in cases[1][1]}))
        for values, provenance in cases:
            for stage in ("draft", "confirm"):
                evaluation = evaluate(defn, values, today=TODAY, provenance=provenance, stage=stage)
                yield catalog_id, render_model(defn, evaluation, provenance)


def test_every_field_prints_what_the_template_printed(reference):
    compared = widgets = 0
    seen = set()
    for catalog_id, model in _models():
        for f in iter_fields(model):
            for show_sources in (False, True):
                expected = _norm(reference.render(Context({"f": f, "show_sources": show_sources})))
                got = _norm(field_html(f, show_sources))
                assert got == expected, f"{catalog_id} {f['id']} ({f['widget']})"
                compared += 1
            seen.add(f["widget"])
            widgets += bool(f.get("suggestion")) + bool(f.get("copy_from")) + bool(f["messages"])
    # The comparison covered every kind of control and the optional parts (suggestions, copy, messages).
    assert {"radio", "checkboxes", "select", "textarea", "age", "date", "text", "kana", "tel", "postal",
            "number"} <= seen
    assert compared > 1000 and widgets > 100


def test_values_are_escaped_like_autoescape():
    defn = builtin_definition(vocabulary.catalog_ids()[0])
    model = render_model(defn, evaluate(defn, _hostile(defn, {}), today=TODAY, stage="draft"), {})
    html = "".join(field_html(f) for f in iter_fields(model))
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &quot;引用&quot; &amp;" in html
