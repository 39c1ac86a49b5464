"""diff_definitions() and migrate_values()."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from formengine import Change, DefinitionError, builtin_definition, diff_definitions, migrate_values

from .conftest import base_values


def test_diff_2021_to_2022():
    changes = diff_definitions(builtin_definition("covid19-2021-03"), builtin_definition("covid19-2022-09"))
    kinds = {(c.kind, c.target) for c in changes}
    assert ("item_added", "report.notification_target") in kinds
    assert ("rule_added", "target.not_notifiable_if_empty") in kinds
    assert ("definition_changed", "version") in kinds
    added = next(c for c in changes if c.target == "report.notification_target")
    assert "発生届の対象" in added.text_ja and "必須" in added.text_ja and added.details == {"required": True}
    assert not any(c.kind.endswith("removed") for c in changes)


def test_diff_of_identical_definitions_is_empty():
    assert diff_definitions(builtin_definition("covid19-2022-09"), builtin_definition("covid19-2022-09")) == []


def test_diff_describes_item_and_rule_changes():
    old = builtin_definition("covid19-2022-09")
    new = copy.deepcopy(old)
    sex = next(i for i in new["items"] if i["id"] == "patient.sex")
    sex["values"].append({"code": "other", "label": "その他"})
    sex["values"][0]["label"] = "男性"
    sex["required"] = False
    sex["label"] = "性"
    new["items"] = [i for i in new["items"] if i["id"] != "patient.occupation"]
    new["rules"][0]["severity"] = "warning"
    new["rules"] = new["rules"][:-1]
    changes = {c.target: c for c in diff_definitions(old, new)}
    text = changes["patient.sex"].text_ja
    assert "必須ではなくなりました" in text and "「その他」" in text and "「男」→「男性」" in text and "「性別」から「性」" in text
    assert changes["patient.occupation"].kind == "item_removed"
    assert changes["dates.not_future"].kind == "rule_changed" and "重大度" in changes["dates.not_future"].text_ja
    assert changes["target.suggest_pregnant"].kind == "rule_removed"
    assert all(isinstance(c, Change) and str(c) == c.text_ja for c in changes.values())


def test_migration_2021_to_2022_reports_the_new_required_target_group():
    values = base_values("covid19-2021-03")
    migrated, report = migrate_values(builtin_definition("covid19-2021-03"), builtin_definition("covid19-2022-09"), values)
    assert migrated == values
    assert report.from_version == "2021-03" and report.to_version == "2022-09"
    assert report.newly_required == ["report.notification_target"]
    assert report.missing_required == ["report.notification_target"]
    assert any("発生届の対象（届出対象区分）" in t and "新しく必須" in t for t in report.text_ja)
    assert report.dropped == [] and report.invalid == []
    json.dumps(dataclasses.asdict(report), ensure_ascii=False)  # storable as the teammate's JSONField


def test_migration_reports_dropped_and_invalid_values():
    old = builtin_definition("covid19-2022-09")
    new = copy.deepcopy(old)
    new["items"] = [i for i in new["items"] if i["id"] not in ("patient.occupation", "tests.result_date")]
    new["rules"] = [r for r in new["rules"] if r["id"] != "tests.collection_before_result"]
    new["rules"][0]["params"]["chain"][0].remove("tests.result_date")
    new["rules"][1]["params"]["chain"][1].remove("tests.result_date")
    sex = next(i for i in new["items"] if i["id"] == "patient.sex")
    sex["values"] = [{"code": "m", "label": "男"}, {"code": "f", "label": "女"}]
    values = base_values("covid19-2022-09") | {"patient.occupation": "会社員", "legacy.item": "x"}
    migrated, report = migrate_values(old, new, values)
    assert "patient.occupation" not in migrated and "legacy.item" not in migrated
    assert migrated["patient.sex"] == "female"  # kept, flagged
    assert migrated["tests"] == [{k: v for k, v in values["tests"][0].items() if k != "result_date"}]
    dropped = {(d["item_id"], d["row"]): d["value"] for d in report.dropped}
    assert dropped == {("patient.occupation", None): "会社員", ("legacy.item", None): "x",
                       ("tests.result_date", 0): "2022-09-29"}
    assert sorted(report.dropped_item_ids) == ["legacy.item", "patient.occupation", "tests.result_date"]
    assert [i["item_id"] for i in report.invalid] == ["patient.sex"]
    assert "会社員" not in json.dumps(dataclasses.asdict(report.without_values()), ensure_ascii=False)
    assert "会社員" in [d["value"] for d in report.dropped]  # the original report still has it
    assert any("会社員" not in t and "当該者職業" in t for t in report.text_ja)


def test_migration_to_an_invalid_definition_is_refused():
    broken = builtin_definition("covid19-2022-09")
    broken["items"] = broken["items"][1:]
    with pytest.raises(DefinitionError):
        migrate_values(builtin_definition("covid19-2021-03"), broken, {})


def test_migration_never_raises_on_garbage():
    for garbage in (None, [], "x", {"tests": "nope"}, {"tests": [1, None, {"method": object()}]}):
        migrate_values(builtin_definition("covid19-2021-03"), builtin_definition("covid19-2022-09"), garbage)
