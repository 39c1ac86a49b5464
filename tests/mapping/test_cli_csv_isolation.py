"""CLI contract, CSV profile mapping, and the rule that mapping imports no Django."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mapping import extract_csv, extract_csv_patients
from mapping.cli import main

from .conftest import DEMO, ROOT, patient_dir

PROFILE = ROOT / "demo" / "profiles" / "H0001.json"  # the demo hospital's profile: not part of the library


def test_mapping_imports_no_django() -> None:
    code = ("import sys, mapping, mapping.cli, mapping.ssmix2, mapping.fhir, mapping.csvdwh; "
            "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'rest_framework')));"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_batch_goes_on_after_bad_paths(samples: Path, tmp_path: Path, capsys: Any) -> None:
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{not json", encoding="utf-8")
    good = samples / "fhir" / "9400000001.json"
    rc = main(["extract", "--format", "fhir", "--local-codes", str(samples / "local-codes.json"),
               str(good), str(tmp_path / "missing.json"), str(bad_json), str(good)])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["source"] for x in lines] == [str(good), str(tmp_path / "missing.json"), str(bad_json), str(good)]
    assert lines[0]["items"]["patient.name"] and "error" not in lines[0]
    assert lines[1]["error"] and lines[1]["items"] == {}
    assert lines[2]["error"] and lines[2]["items"] == {}
    assert lines[3]["items"] == lines[0]["items"]
    for x in lines:
        assert {"source", "items", "provenance", "warnings", "suggestions"} <= set(x)


def test_cli_subprocess_ssmix2(samples: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "mapping", "extract", "--format", "ss-mix2", "--local-codes",
                        str(samples / "local-codes.json"), str(patient_dir(samples, "9400000001")), "/nope"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert out[0]["items"]["care.hospitalized"] == "yes" and out[1]["error"]


def test_coverage_command(samples: Path, capsys: Any) -> None:
    paths = [str(p) for p in sorted((samples / "fhir").glob("*.json"))]
    rc = main(["coverage", "--format", "fhir", "--local-codes", str(samples / "local-codes.json"),
               "--catalog", str(ROOT / "vocabulary" / "catalogs" / "covid19-2022-09.json"), "--json", *paths])
    assert rc == 0
    cov = json.loads(capsys.readouterr().out)
    assert cov["extracts"] == len(paths) and cov["catalog_items"] == 50
    assert cov["per_item"]["patient.name"] == len(paths)
    assert cov["per_item"]["report.diagnosis_class"] == 0  # a medical judgement is never pre-filled
    assert 14 <= cov["mean_filled_percent"] <= 60


def test_demo_csv_sample_with_profile() -> None:
    codes = DEMO / "local-codes.json"
    res = extract_csv((DEMO / "dwh" / "8800000101.csv").read_bytes(), codes, PROFILE)  # cp932
    items = res["items"]
    assert items["patient.name"] == "見本　一郎" and items["patient.name_kana"] == "ミホン　イチロウ"
    assert items["patient.sex"] == "male" and items["patient.postal_code"] == "1000001"
    assert items["clinical.diagnosis_date"] == "2021-05-11" and items["care.admission_date"] == "2021-05-12"
    assert items["risk.factors"] == ["dyslipidemia", "hypertension"]
    assert [t["result"] for t in items["tests"]] == ["negative", "positive"]
    assert res["provenance"]["patient.name"] == "csv:漢字姓+漢字名"
    both = extract_csv_patients((DEMO / "dwh" / "H0001-sample.csv").read_bytes(), codes, PROFILE)
    assert set(both) == {"8800000101", "8800000102"}
    assert both["8800000102"]["items"]["patient.birth_date"] == "2013-02-03"
    assert extract_csv((DEMO / "dwh" / "H0001-sample.csv").read_bytes(), codes, PROFILE).get("error")


def test_csv_needs_the_hospitals_profile(capsys: Any) -> None:
    """No hospital's profile ships inside `mapping`: without one a CSV is refused with a clear message."""
    assert not (ROOT / "mapping" / "profiles").exists()
    res = extract_csv((DEMO / "dwh" / "8800000101.csv").read_bytes(), DEMO / "local-codes.json")
    assert res["error"] and "プロファイル" in res["error"] and res["items"] == {}
    csv_path = str(DEMO / "dwh" / "8800000101.csv")
    assert main(["extract", "--format", "csv", "--local-codes", str(DEMO / "local-codes.json"), csv_path]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["error"] and out["items"] == {}
    assert main(["extract", "--format", "csv", "--local-codes", str(DEMO / "local-codes.json"),
                 "--profile", str(PROFILE), csv_path]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "error" not in out and out["items"]["patient.name"] == "見本　一郎"


def test_coverage_defaults_to_the_newest_covid_catalog(samples: Path, capsys: Any) -> None:
    paths = [str(p) for p in sorted((samples / "fhir").glob("*.json"))][:3]
    assert main(["coverage", "--format", "fhir", "--local-codes", str(samples / "local-codes.json"), "--json",
                 *paths]) == 0
    cov = json.loads(capsys.readouterr().out)
    assert cov["catalog_version"] == "2022-09" and cov["per_item"]["tests.result"] == 3


def test_csv_built_from_answer_key_round_trips(answer_key: dict[str, Any], samples: Path, scorer: Any) -> None:
    """A DWH export holding the answer-key facts maps back to them through the H0001 profile."""
    prof = json.loads(PROFILE.read_text(encoding="utf-8"))
    cols = {k: v for k, v in prof["columns"].items()}
    lab = {"pcr": "L7001", "antigen_qualitative": "L7002", "antigen_quantitative": "L7003"}
    spec = {"nasopharyngeal_swab": "S01", "nasal_swab": "S02", "saliva": "S03", "sputum": "S04"}
    icd = {"copd": "J44.9", "ckd": "N18.4", "diabetes_t2": "E11.9", "hypertension": "I10", "dyslipidemia": "E78.5",
           "obesity": "E66.9", "malignancy": "C34.9", "pregnancy": "Z33", "smoking": "F17.2"}
    for pid, key in answer_key.items():
        row = {"患者ID": pid}
        fam, _, giv = key["patient.name"].partition("　")
        kfam, _, kgiv = key["patient.name_kana"].partition("　")
        row.update({"漢字姓": fam, "漢字名": giv, "カナ姓": kfam, "カナ名": kgiv,
                    "性別": {"male": "1", "female": "2"}[key["patient.sex"]],
                    "病名ICD10": ";".join(icd[f] for f in key.get("risk.factors", []))})
        for item, c in cols.items():
            if "column" in c and item in key and item != "risk.factors":
                row[c["column"]] = key[item]
        for n, t in enumerate(key.get("tests", []), 1):
            row.update({f"検査{n}_項目コード": lab[t["method"]], f"検査{n}_検体コード": spec[t["specimen"]],
                        f"検査{n}_採取日": t["collection_date"].replace("-", "/"),
                        f"検査{n}_結果": {"positive": "陽性", "negative": "陰性"}[t["result"]],
                        f"検査{n}_結果日": t["result_date"]})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
        res = extract_csv(buf.getvalue(), samples / "local-codes.json", prof)
        correct, wrong, total, notes = scorer.score(res["items"], key)
        assert wrong == 0 and correct == total, (pid, notes)
