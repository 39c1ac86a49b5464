"""Checking an items-only push against the vocabulary: the connector ran `mapping` inside the hospital and sends
only notification items (別紙1 ②). Anything that is not a notification item — an unknown id, a value of the wrong
shape, an enum code the vocabulary does not know, a field beyond the test group's five — is refused with a clear
message, so nothing else of the chart can leave the hospital through this door."""
from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any

import vocabulary

TEST_GROUP = "tests"
MAX_TESTS = 8
MAX_TEXT = 500
MAX_WARNINGS = 100
_PROVENANCE_KEY = re.compile(r"(?P<group>[a-z_]+)\[(?P<index>[0-9]{1,2})\]\.(?P<field>[a-z_]+)")


@lru_cache(maxsize=1)
def vocabulary_items() -> dict[str, dict[str, Any]]:
    """Every notification item of every shipped catalog: id → {type, codes}. A code valid in any version is
    accepted here; the form a notification uses decides what is finally shown and sent."""
    out: dict[str, dict[str, Any]] = {}
    for version in vocabulary.catalog_ids():
        for item in vocabulary.catalog(version).get("items", []):
            entry = out.setdefault(item["id"], {"type": item.get("type", "text"), "codes": set()})
            entry["codes"].update(v.get("code") for v in item.get("values") or [] if isinstance(v, dict))
    return out


def test_fields() -> dict[str, dict[str, Any]]:
    return {key.split(".", 1)[1]: value for key, value in vocabulary_items().items()
            if key.startswith(TEST_GROUP + ".")}


def _text_ok(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT and not any(
        ord(ch) < 32 and ch not in "\n\t" for ch in value)


def _value_problem(item: dict[str, Any], value: Any) -> str | None:
    kind = item["type"]
    if kind == "enum":
        return None if isinstance(value, str) and value in item["codes"] else "語彙にないコードです"
    if kind == "multi_enum":
        ok = isinstance(value, list) and len(value) <= 50 and all(
            isinstance(v, str) and v in item["codes"] for v in value)
        return None if ok else "語彙にあるコードの配列にしてください"
    if kind == "date" or kind.endswith("_date"):
        if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            try:
                date.fromisoformat(value)
                return None
            except ValueError:
                pass
        return "日付は YYYY-MM-DD にしてください"
    if kind in ("integer", "age"):
        ok = (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 200) or (
            isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3)
        return None if ok else "整数にしてください"
    return None if _text_ok(value) else f"文字列（{MAX_TEXT}文字以内、制御文字なし）にしてください"


def items_problems(items: Any) -> list[str]:
    """What is wrong with the pushed `items` (empty when they are all notification items of the right shape)."""
    if not isinstance(items, dict):
        return ["items は {項目ID: 値} のオブジェクトにしてください。"]
    known = vocabulary_items()
    fields = test_fields()
    problems = []
    for key, value in items.items():
        if key == TEST_GROUP:
            if not isinstance(value, list) or len(value) > MAX_TESTS:
                problems.append(f"tests は最大{MAX_TESTS}件の配列にしてください。")
                continue
            for i, row in enumerate(value):
                if not isinstance(row, dict):
                    problems.append(f"tests[{i}] はオブジェクトにしてください。")
                    continue
                for field, cell in row.items():
                    if field not in fields:
                        problems.append(f"tests[{i}].{str(field)[:40]}: 届出の項目ではありません。")
                    elif cell is not None and (why := _value_problem(fields[field], cell)):
                        problems.append(f"tests[{i}].{field}: {why}。")
        elif key not in known or key.startswith(TEST_GROUP + "."):
            problems.append(f"{str(key)[:60]}: 届出の項目ではありません（語彙にない項目は受け付けません）。")
        elif value is not None and (why := _value_problem(known[key], value)):
            problems.append(f"{key}: {why}。")
    return problems


def _known_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    match = _PROVENANCE_KEY.fullmatch(key)
    if match:
        return match["group"] == TEST_GROUP and match["field"] in test_fields()
    return key in vocabulary_items() or key == TEST_GROUP


def annotations_problems(provenance: Any, suggestions: Any, warnings: Any) -> list[str]:
    """Provenance, suggestions and warnings may only speak about notification items (short texts, no values of
    anything else)."""
    problems = []
    if not isinstance(provenance, dict):
        problems.append("provenance は {項目ID: 出所} のオブジェクトにしてください。")
    else:
        for key, where in provenance.items():
            if not _known_key(key):
                problems.append(f"provenance の {str(key)[:60]}: 届出の項目ではありません。")
            elif not _text_ok(where):
                problems.append(f"provenance の {key}: 出所は短い文字列にしてください。")
    if not isinstance(suggestions, dict):
        problems.append("suggestions は {項目ID: 提案} のオブジェクトにしてください。")
    else:
        for key, suggestion in suggestions.items():
            if not _known_key(key):
                problems.append(f"suggestions の {str(key)[:60]}: 届出の項目ではありません。")
            elif not isinstance(suggestion, dict) or not all(
                    isinstance(k, str) and (v is None or isinstance(v, (bool, int)) or _text_ok(v)
                                            or (isinstance(v, list) and all(_text_ok(x) for x in v)))
                    for k, v in suggestion.items()):
                problems.append(f"suggestions の {key}: 提案は短い値と理由のオブジェクトにしてください。")
    if not isinstance(warnings, list) or len(warnings) > MAX_WARNINGS or not all(_text_ok(w) for w in warnings):
        problems.append(f"warnings は短い文字列の配列（最大{MAX_WARNINGS}件）にしてください。")
    return problems
