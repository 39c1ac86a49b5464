"""Every named constant of ``vocabulary.ids`` exists in at least one shipped catalog."""
from __future__ import annotations

import vocabulary
from vocabulary import ids


def constants() -> dict[str, str]:
    return {name: value for name, value in vars(ids).items() if name.isupper() and isinstance(value, str)}


def catalogs() -> list[dict]:
    return [vocabulary.catalog(cid) for cid in vocabulary.catalog_ids()]


def test_there_are_constants() -> None:
    assert len(constants()) > 30


def test_every_item_constant_is_an_item_of_some_catalog() -> None:
    known = {item["id"] for c in catalogs() for item in c["items"]}
    items = {name: value for name, value in constants().items() if "." in value}
    assert items and all(value in known for value in items.values()), {
        n: v for n, v in items.items() if v not in known}


def test_every_other_constant_is_a_group_a_form_or_a_value_code() -> None:
    groups = {g["id"] for c in catalogs() for g in c["groups"]}
    forms = set(vocabulary.form_keys())
    value_constants = {v for codes in ids.VALUE_CODES.values() for v in codes}
    strays = {name: value for name, value in constants().items()
              if "." not in value and value not in groups | forms | value_constants}
    assert not strays, f"constants that name nothing in the catalogs (or are missing from VALUE_CODES): {strays}"
    assert ids.TESTS in groups and ids.FORM_COVID19 in forms


def test_value_codes_belong_to_their_item() -> None:
    for item_id, codes in ids.VALUE_CODES.items():
        offered = {v["code"] for c in catalogs() for item in c["items"] if item["id"] == item_id
                   for v in item.get("values", [])}
        assert offered, item_id
        assert set(codes) <= offered, (item_id, set(codes) - offered)


def test_test_row_keys_are_the_covid19_tests_group() -> None:
    for cid in vocabulary.catalogs_for(ids.FORM_COVID19):
        items = vocabulary.catalog(cid)["items"]
        assert list(ids.TEST_ROW_KEYS) == [ids.row_key(i["id"]) for i in items if i.get("group") == ids.TESTS]
