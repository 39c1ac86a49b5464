"""Each notification catalog exists exactly once in the repository, in ``vocabulary/catalogs/``, and the COVID-19
catalogs still say what the shared HER-SYS item lists say, item by item.

The repository scan reads the git-tracked tree (what a checkout ships), so stray copies in other packages, test
folders or docs are found wherever they are.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import vocabulary

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = "vocabulary/catalogs/"
SHARED = ROOT.parent / "shared" / "hersys"


def tracked_json() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "*.json"], cwd=ROOT, capture_output=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [p for p in out.decode("utf-8").split("\0") if p and (ROOT / p).is_file()]


def is_catalog(data: Any) -> bool:
    """A notification item catalog in any format: the enriched one or the raw HER-SYS item list it came from."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not data["items"]:
        return False
    itemish = all(isinstance(i, dict) and {"id", "label", "type"} <= set(i) for i in data["items"])
    return itemish and "version" in data and ("rules" in data or "catalog" in data or "form" in data)


def catalogs_in_repo() -> dict[str, dict[str, Any]]:
    found = {}
    for path in tracked_json():
        try:
            data = json.loads((ROOT / path).read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            continue
        if is_catalog(data):
            found[path] = data
    return found


def fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_every_catalog_lives_in_the_vocabulary_package_only() -> None:
    found = catalogs_in_repo()
    assert set(found) >= {f"{CATALOG_DIR}{cid}.json" for cid in vocabulary.catalog_ids()}
    strays = sorted(p for p in found if not p.startswith(CATALOG_DIR) or "/" in p[len(CATALOG_DIR):])
    assert not strays, f"catalog JSON outside {CATALOG_DIR}: {strays}"


def test_no_two_files_hold_the_same_catalog() -> None:
    found = catalogs_in_repo()
    by_key: dict[tuple[str, str], list[str]] = {}
    by_content: dict[str, list[str]] = {}
    by_items: dict[str, list[str]] = {}
    for path, data in found.items():
        by_key.setdefault((str(data.get("form", "")), str(data["version"])), []).append(path)
        by_content.setdefault(fingerprint(data), []).append(path)
        items = [(i["id"], i["label"], i["type"]) for i in data["items"]]
        by_items.setdefault(fingerprint({"version": data["version"], "items": items}), []).append(path)
    for index in (by_key, by_content, by_items):
        dupes = [paths for paths in index.values() if len(paths) > 1]
        assert not dupes, f"the same catalog in several files: {dupes}"


def test_raw_hersys_item_lists_are_gone() -> None:
    """The raw ``items-YYYY-MM.json`` lists were converted once; only the enriched catalogs remain."""
    raw = [p for p in tracked_json() if Path(p).name.startswith("items-")]
    assert not raw, raw
    for path, data in catalogs_in_repo().items():
        assert data.get("catalog") == vocabulary.CATALOG_FORMAT, path


def test_catalog_files_are_named_after_form_and_version() -> None:
    for cid in vocabulary.catalog_ids():
        data = vocabulary.catalog(cid)
        assert vocabulary.catalog_path(cid).name == f"{data['form']}-{data['version']}.json"
        assert vocabulary.catalog_problems(data, file_name=f"{cid}.json") == []


def test_the_scan_finds_a_planted_copy() -> None:
    """The detector is not vacuous: a catalog copied anywhere is recognised as one, other JSON is not."""
    copied = vocabulary.catalog("covid19-2022-09")
    assert is_catalog(copied)
    raw_shape = {"catalog": "hersys-notification-items", "version": "2021-03", "rules": ["x"],
                 "items": [{"id": "patient.name", "label": "氏名", "type": "text"}]}
    assert is_catalog(raw_shape)
    codes = json.loads((ROOT / "demo" / "emr-samples" / "local-codes.json").read_text(encoding="utf-8"))
    assert not is_catalog(codes)
    assert not is_catalog({"version": "1", "items": [{"id": "x"}], "rules": []})


# -- the enriched COVID-19 catalogs against the shared HER-SYS item lists they were converted from ------------------

SHARED_VERSIONS = ("2021-03", "2022-09")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/hersys not available")
@pytest.mark.parametrize("version", SHARED_VERSIONS)
def test_enriched_catalog_matches_the_shared_item_list(version: str) -> None:
    raw = json.loads((SHARED / f"items-{version}.json").read_text(encoding="utf-8"))
    enriched = vocabulary.catalog(vocabulary.find("covid19", version) or "")
    assert enriched["version"] == raw["version"]
    assert enriched["sections"] == raw["sections"]
    assert enriched["changes_from_previous"] == raw["changes_from_previous"]
    assert [i["id"] for i in enriched["items"]] == [i["id"] for i in raw["items"]]
    groups = {g["id"]: g for g in enriched["groups"]}
    for got, want in zip(enriched["items"], raw["items"], strict=True):
        where = want["id"]
        for key in ("label", "type", "section", "required", "priority", "medical_judgement"):
            assert got[key] == want[key], (where, key)
        assert got.get("values") == want.get("values"), where
        assert got.get("help") == want.get("note"), where
        assert got.get("emr_source") == want.get("emr_source"), where
        if want.get("repeat"):
            assert groups[got["group"]]["max"] == want["repeat"] and where.startswith(got["group"] + "."), where
        else:
            assert "group" not in got, where
    sources = {r.get("source") for r in enriched["rules"]}
    missing = [text for text in raw["rules"] if text not in sources]
    assert not missing, f"raw rule texts with no structured rule: {missing}"
    assert sources <= set(raw["rules"]), "a structured rule cites a text the shared list does not have"
