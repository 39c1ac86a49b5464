"""The condition language: small JSON expressions, interpreted here (never eval()).

A condition is one of

* ``{"and": [cond, ...]}``, ``{"or": [cond, ...]}``, ``{"not": cond}``
* a comparison on one item: ``{"item": "<item id>", "<op>": <operand>}`` with ``op`` one of
  ``eq``, ``ne``, ``in`` (operand: list), ``includes`` (multi_enum contains the code), ``lt``, ``lte``, ``gt``,
  ``gte`` (numbers, ages in years, or ISO dates; ``"$today"`` means the evaluation date) and ``empty``
  (operand ``true``: no value; ``false``: has a value)
* a row quantifier over a repeat group: ``{"any": "<group id>", "where": cond}`` — true when at least one
  (non-empty) row satisfies ``where``; inside ``where`` item ids of that group refer to the current row.

Outside ``any``, a comparison on an item of a repeat group is true when it holds for at least one row
(``empty`` is true when no row has a value). A comparison on an absent value is false (``ne`` included; write
``{"not": {"item": .., "eq": ..}}`` to include absent values). Ages compare in years (months / 12).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

COMPARISON_OPS = ("eq", "ne", "in", "includes", "lt", "lte", "gt", "gte", "empty")
BOOLEAN_OPS = ("and", "or", "not")
TODAY = "$today"


@dataclass
class Context:
    """Clean (type-checked) values: top-level items by id, repeat-group rows keyed by full item id."""

    values: Mapping[str, Any]
    rows: Mapping[str, list[dict[str, Any]]]
    types: Mapping[str, str]
    group_of: Mapping[str, str]
    today: date | None = None
    row: dict[str, Any] | None = None
    row_group: str | None = None

    def candidates(self, item_id: str) -> list[Any]:
        group = self.group_of.get(item_id)
        if group is None:
            return [self.values.get(item_id)]
        if self.row is not None and self.row_group == group:
            return [self.row.get(item_id)]
        return [row.get(item_id) for row in self.rows.get(group, [])]

    def in_row(self, group: str, row: dict[str, Any]) -> Context:
        return Context(self.values, self.rows, self.types, self.group_of, self.today, row, group)


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, set)):
        return len(value) == 0
    return False


def _as_number(value: Any, item_type: str) -> float | None:
    if item_type == "age" and isinstance(value, dict):
        number = value.get("value")
        if isinstance(number, int) and not isinstance(number, bool):
            return number / 12 if value.get("unit") == "months" else float(number)
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _as_date(value: Any, today: date | None) -> date | None:
    if isinstance(value, date):
        return value
    if value == TODAY:
        return today
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _ordered(value: Any, operand: Any, item_type: str, today: date | None) -> tuple[Any, Any] | None:
    if item_type == "date":
        a, b = _as_date(value, today), _as_date(operand, today)
    else:
        a, b = _as_number(value, item_type), _as_number(operand, "integer")
    if a is None or b is None:
        return None
    return a, b


def _compare(op: str, value: Any, operand: Any, item_type: str, today: date | None) -> bool:
    if is_empty(value):
        return False
    if op == "eq":
        return value == operand
    if op == "ne":
        return value != operand
    if op == "in":
        if isinstance(value, list):
            return any(v in operand for v in value)
        return value in operand
    if op == "includes":
        return operand in value if isinstance(value, list) else value == operand
    pair = _ordered(value, operand, item_type, today)
    if pair is None:
        return False
    a, b = pair
    if op == "lt":
        return a < b
    if op == "lte":
        return a <= b
    if op == "gt":
        return a > b
    if op == "gte":
        return a >= b
    return False


def comparison_op(cond: Mapping[str, Any]) -> str | None:
    for op in COMPARISON_OPS:
        if op in cond:
            return op
    return None


def evaluate_condition(cond: Any, ctx: Context) -> bool:
    """Interpret a (schema-valid) condition. Malformed parts evaluate to False rather than raising."""
    if not isinstance(cond, Mapping):
        return False
    if "and" in cond:
        parts = cond["and"]
        return isinstance(parts, list) and all(evaluate_condition(c, ctx) for c in parts)
    if "or" in cond:
        parts = cond["or"]
        return isinstance(parts, list) and any(evaluate_condition(c, ctx) for c in parts)
    if "not" in cond:
        return not evaluate_condition(cond["not"], ctx)
    if "any" in cond:
        group = cond["any"]
        return any(evaluate_condition(cond.get("where"), ctx.in_row(group, row)) for row in ctx.rows.get(group, []))
    item_id = cond.get("item")
    op = comparison_op(cond)
    if not isinstance(item_id, str) or op is None:
        return False
    candidates = ctx.candidates(item_id)
    if op == "empty":
        empty = all(is_empty(v) for v in candidates)
        return empty if cond["empty"] else not empty
    item_type = ctx.types.get(item_id, "text")
    return any(_compare(op, v, cond[op], item_type, ctx.today) for v in candidates)


def condition_refs(cond: Any) -> Iterator[str]:
    """Every item id a condition mentions (for semantic checks)."""
    if not isinstance(cond, Mapping):
        return
    for key in ("and", "or"):
        if isinstance(cond.get(key), list):
            for part in cond[key]:
                yield from condition_refs(part)
    if "not" in cond:
        yield from condition_refs(cond["not"])
    if "where" in cond:
        yield from condition_refs(cond["where"])
    if isinstance(cond.get("item"), str):
        yield cond["item"]


def condition_groups(cond: Any) -> Iterator[str]:
    """Every repeat-group id a condition quantifies over."""
    if not isinstance(cond, Mapping):
        return
    for key in ("and", "or"):
        if isinstance(cond.get(key), list):
            for part in cond[key]:
                yield from condition_groups(part)
    if "not" in cond:
        yield from condition_groups(cond["not"])
    if isinstance(cond.get("any"), str):
        yield cond["any"]
        yield from condition_groups(cond.get("where"))


def condition_literals(cond: Any) -> Iterator[tuple[str, str, Any]]:
    """(item id, op, operand) of every comparison, for value-set checks."""
    if not isinstance(cond, Mapping):
        return
    for key in ("and", "or"):
        if isinstance(cond.get(key), list):
            for part in cond[key]:
                yield from condition_literals(part)
    if "not" in cond:
        yield from condition_literals(cond["not"])
    if "where" in cond:
        yield from condition_literals(cond["where"])
    op = comparison_op(cond)
    if isinstance(cond.get("item"), str) and op is not None:
        yield cond["item"], op, cond[op]
