"""What render_model adds for the people filling the form (issue 10): dates and postal codes shown one way, the
postal code paired with its address, the header, progress, error summary, neutral 未入力 on a fresh form, source
badges in words, spare test rows, items that do not apply folded away."""
from __future__ import annotations

from formengine import builtin_definition, evaluate, render_model

from .conftest import TODAY, base_values


def _fields(model):
    for section in model["sections"]:
        for entry in section["entries"]:
            if entry["kind"] == "field":
                yield entry
            else:
                for row in entry["rows"]:
                    yield from row["cells"]


def field(model, item_id):
    return next(f for f in _fields(model) if f["id"] == item_id)


def render(values, provenance=None, stage="draft", version="2022-09"):
    defn = builtin_definition(version)
    return render_model(defn, evaluate(defn, values, today=TODAY, stage=stage), provenance or {})


def test_dates_are_shown_the_japanese_way_with_the_era_under_the_box():
    birth = field(render(base_values("2022-09")), "patient.birth_date")
    assert birth["value"] == "1980-05-10" and birth["display"] == "1980年5月10日"
    assert birth["understood"] == "1980年5月10日（昭和55年）"
    assert birth["input"]["type"] == "text"  # one text box, not a native date box


def test_postal_codes_are_shown_one_way_and_a_code_from_elsewhere_warns_under_both():
    values = base_values("2022-09") | {"patient.postal_code": "1000001", "patient.address": "広島県広島市中区基町10-1"}
    model = render(values)
    code, address = field(model, "patient.postal_code"), field(model, "patient.address")
    assert code["display"] == "100-0001"
    assert code["address_for"] == "f-patient-address" and address["postal_for"] == "f-patient-postal_code"
    for f in (code, address):
        assert [m["rule_id"] for m in f["messages"]] == ["postal.address_mismatch"]
        assert f["messages"][0]["severity"] == "warning" and not f["has_error"]
    agreeing = render(values | {"patient.address": "東京都千代田区千代田１−１"})
    assert field(agreeing, "patient.postal_code")["messages"] == []
