"""The ``vocabulary`` API: pure, cached, and driven by the files in ``vocabulary/catalogs/`` alone."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vocabulary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the shipped catalogs that a test may add files to."""
    target = tmp_path / "catalogs"
    shutil.copytree(vocabulary.CATALOG_DIR, target)
    monkeypatch.setattr(vocabulary, "CATALOG_DIR", target)
    vocabulary._index.cache_clear()
    yield target
    vocabulary._index.cache_clear()


def _write(directory: Path, data: dict) -> None:
    (directory / f"{data['form']}-{data['version']}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def test_covid19_catalogs() -> None:
    assert {"covid19-2021-03", "covid19-2022-09"} <= set(vocabulary.catalog_ids())
    assert vocabulary.catalogs_for("covid19") == ("covid19-2021-03", "covid19-2022-09")
    assert vocabulary.latest("covid19") == "covid19-2022-09"
    assert vocabulary.find("covid19", "2021-03") == "covid19-2021-03"
    assert vocabulary.find("covid19", "2099-01") is None and vocabulary.find("nope", "2021-03") is None
    assert "covid19" in vocabulary.form_keys()
    with pytest.raises(KeyError):
        vocabulary.latest("nope")
    with pytest.raises(KeyError):
        vocabulary.catalog("covid19-2099-01")


def test_item_sets_are_what_the_destination_required() -> None:
    base = ("patient.name", "patient.sex", "patient.birth_date", "report.diagnosis_class")
    assert vocabulary.item_set("covid19", "2021-03") == base
    assert vocabulary.item_set("covid19", "2022-09") == (*base, "report.notification_target")
    with pytest.raises(KeyError):
        vocabulary.item_set("covid19", "2099-01")


def test_catalog_returns_copies_and_labels_and_codes_come_from_it() -> None:
    a = vocabulary.catalog("covid19-2022-09")
    a["items"].clear()
    assert vocabulary.catalog("covid19-2022-09")["items"]
    labels = vocabulary.item_labels("covid19", "2022-09")
    assert labels["patient.name"] == "当該者氏名"
    assert vocabulary.value_codes("covid19-2022-09", "tests.result") == ("positive", "negative", "pending")
    assert vocabulary.value_codes("covid19-2022-09", "patient.name") == ()


def test_resolve_accepts_a_catalog_id_or_an_unambiguous_bare_version(catalog_dir: Path) -> None:
    assert vocabulary.resolve("covid19-2021-03") == "covid19-2021-03"
    assert vocabulary.resolve("2021-03") == "covid19-2021-03"
    other = vocabulary.catalog("covid19-2021-03") | {"form": "other"}
    _write(catalog_dir, other)
    vocabulary._index.cache_clear()
    with pytest.raises(KeyError):  # two forms have 2021-03 now
        vocabulary.resolve("2021-03")
    assert vocabulary.resolve("other-2021-03") == "other-2021-03"


def test_a_new_catalog_file_is_a_new_form_with_no_code_change(catalog_dir: Path) -> None:
    new = vocabulary.catalog("covid19-2022-09") | {"form": "demo_form", "version": "2030-01", "disease": "見本"}
    _write(catalog_dir, new)
    vocabulary._index.cache_clear()
    assert "demo_form-2030-01" in vocabulary.catalog_ids()
    assert vocabulary.form_keys()[0] == "covid19" and "demo_form" in vocabulary.form_keys()
    assert vocabulary.latest("demo_form") == "demo_form-2030-01"
    assert vocabulary.item_set("demo_form", "2030-01") == vocabulary.item_set("covid19", "2022-09")


def test_versions_are_ordered_oldest_first(catalog_dir: Path) -> None:
    for version in ("2023-01", "2021-12"):
        _write(catalog_dir, vocabulary.catalog("covid19-2022-09") | {"version": version})
    vocabulary._index.cache_clear()
    assert vocabulary.catalogs_for("covid19") == ("covid19-2021-03", "covid19-2021-12", "covid19-2022-09",
                                                  "covid19-2023-01")


@pytest.mark.parametrize("breakage, message", [
    ({"catalog": "hersys-notification-items"}, "notification-items/1"),
    ({"form": "COVID 19"}, '"form"'),
    ({"item_set": ["patient.shoe_size"]}, "patient.shoe_size"),
    ({"emr_items": ["nope.nope"]}, "nope.nope"),
    ({"source": {"document": "x"}}, '"source"'),
    ({"rules": ["all dates <= today"]}, "structured"),
    ({"extra": 1}, "unknown keys"),
])
def test_a_broken_catalog_file_is_refused_when_read(catalog_dir: Path, breakage: dict, message: str) -> None:
    broken = vocabulary.catalog("covid19-2022-09") | {"version": "2031-01"} | breakage
    name = f"{broken['form']}-2031-01.json" if isinstance(broken.get("form"), str) else "x.json"
    (catalog_dir / name).write_text(json.dumps(broken, ensure_ascii=False), "utf-8")
    vocabulary._index.cache_clear()
    with pytest.raises(vocabulary.CatalogError, match=message.replace("(", r"\(")):
        vocabulary.catalog_ids()


def test_a_misnamed_file_is_refused(catalog_dir: Path) -> None:
    shutil.copy(catalog_dir / "covid19-2022-09.json", catalog_dir / "covid19-latest.json")
    vocabulary._index.cache_clear()
    with pytest.raises(vocabulary.CatalogError, match="file name"):
        vocabulary.catalog_ids()


def test_vocabulary_is_pure_python() -> None:
    code = ("import sys, vocabulary, vocabulary.ids; vocabulary.catalog_ids(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'formengine',"
            " 'mapping', 'hersys_client', 'assist_portal')); print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_reads_are_cached() -> None:
    vocabulary.catalog_ids()
    before = vocabulary._index.cache_info().hits
    vocabulary.catalog("covid19-2022-09")
    vocabulary.item_set("covid19", "2022-09")
    assert vocabulary._index.cache_info().hits > before and vocabulary._index.cache_info().currsize == 1
