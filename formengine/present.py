"""What a screen or a paper form shows of a definition and its values, assembled once.

`present` is evaluate → render_model in one call (the form page, its error and conflict pages, the print page,
the PDF and the central preview all show the same thing); `adopt_suggestion` applies a suggestion a person chose
to adopt, and nothing else."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from .definition import items_by_id
from .engine import Evaluation, evaluate
from .render import render_model


@dataclass(frozen=True)
class Presented:
    evaluation: Evaluation
    model: dict[str, Any]


def present(defn: dict[str, Any], values: Any, *, today: date, provenance: dict[str, Any] | None = None,
            stage: str = "draft", evaluation: Evaluation | None = None) -> Presented:
    """Evaluate `values` (unless an evaluation is given) and build the template model from it."""
    provenance = provenance if isinstance(provenance, dict) else {}
    if evaluation is None:
        evaluation = evaluate(defn, values, today=today, provenance=provenance, stage=stage)
    return Presented(evaluation, render_model(defn, evaluation, provenance))


def adopt_suggestion(defn: dict[str, Any], values: dict[str, Any], choice: str) -> tuple[dict[str, Any], str | None]:
    """Apply the suggestion a person chose ("<item id>|<code>"): only a code of that item's value set; a
    multi-choice item gains the code, a single-choice item takes it. Returns (values, adopted item id or None)."""
    item_id, _, code = str(choice).partition("|")
    item = items_by_id(defn).get(item_id)
    if item is None or code not in {v.get("code") for v in item.get("values", []) or []}:
        return values, None
    values = dict(values)
    if item.get("type") == "multi_enum":
        values[item_id] = [v for v in values.get(item_id) or [] if v != code] + [code]
    else:
        values[item_id] = code
    return values, item_id
