"""Import a form defined in the eInfectionReport IG authors' Excel layout.

Supported layout (one workbook; the sheet named ``Questionnaire`` if there is one, else the first sheet):

1. **Header rows** — column A holds a key starting with ``#``, column B its value. Read: ``#category``,
   ``#description``, ``#sheetID``, ``#version`` (the definition's version; required), ``#name``, ``#title``
   (``#title`` or else ``#name`` becomes the title), ``#status``, ``#publisher``, ``#date``, ``#url``,
   ``#catalog``, ``#disease``, ``#form`` (the form key, e.g. ``ehec``). Other ``#`` rows are ignored; blank rows anywhere are skipped.
2. **Column header row** — the first row whose column A is ``linkId``. Columns are found by name
   (case-insensitive, any order): ``linkId``, ``text``, ``type`` (required); ``required``, ``repeats``,
   ``answerOption``, ``enableWhen``, ``enableBehavior``, ``definition``, ``maxLength``, ``maxOccurs``, ``help``,
   ``priority``, ``medical_judgement``, ``emr_source``, ``hersys_path`` (optional). Unknown columns are ignored.
3. **Item rows** below it, in form order:

   * ``type`` — FHIR item types ``group``, ``display``, ``string``, ``text``, ``choice``, ``open-choice``,
     ``date``, ``dateTime``, ``integer``, ``decimal``, ``boolean``, ``quantity`` (an age) or the engine's own
     ``kana``, ``enum``, ``multi_enum``, ``phone``, ``postal_code``, ``prefecture``, ``age``. ``choice`` with
     ``repeats`` = multi_enum. ``display`` rows are ignored.
   * A ``group`` row without ``repeats`` starts a **section** (its linkId is the section id). A ``group`` row
     with ``repeats`` starts a **repeat group** in the current section (``maxOccurs`` slots, default 4);
     following rows whose linkId starts with ``<group linkId>_`` are its members, the first row that doesn't
     ends it. Rows before any section row go to a section ``main``.
   * Booleans (``required``, ``repeats``, ``priority``, ``medical_judgement``): TRUE/FALSE, 1/0, yes/no, y/n,
     ○/×, はい/いいえ, 必須; blank = false.
   * ``answerOption`` — one option per line (or separated by ``|``): ``code:label``, ``code=label`` or
     ``code label`` (a tab); a lone value is both code and label (codes must match ``[A-Za-z0-9_.:-]``,
     otherwise ``o1``, ``o2`` … are assigned).
   * ``enableWhen`` — one condition per line (or ``;``): ``<linkId> = <code>``, ``!=``, ``<``, ``<=``, ``>``,
     ``>=``, ``<linkId> exists``, ``<linkId> not exists``; several combine with ``enableBehavior`` ``all``
     (default) or ``any``. Referenced linkIds must be defined on an earlier or later row of the sheet.
   * ``definition`` — ``urn:hersys-assist:item:<item id>`` or a bare item id; without it the item id is
     ``<section>.<linkId>`` (``<group>.<linkId>`` in a repeat group).
4. Optional sheet ``rules`` — header row ``id``, ``kind``, ``params`` (JSON), ``severity``, ``message``; one
   structured rule per row (same rule language as the JSON definitions).

The result is validated like every definition; problems raise DefinitionError with the row number.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from .definition import FORMAT, ensure_valid
from .errors import DefinitionError

MAX_ROWS = 3000
_TYPES = {"string": "text", "text": "text", "choice": "enum", "open-choice": "enum", "date": "date",
          "datetime": "date", "integer": "integer", "decimal": "integer", "boolean": "enum", "quantity": "age",
          "kana": "kana", "enum": "enum", "multi_enum": "multi_enum", "phone": "phone", "postal_code": "postal_code",
          "prefecture": "prefecture", "age": "age"}
_TRUE = {"true", "1", "yes", "y", "○", "◯", "はい", "必須", "x", "✓"}
_COLUMNS = ("linkid", "text", "type", "required", "repeats", "answeroption", "enablewhen", "enablebehavior",
            "definition", "maxlength", "maxoccurs", "help", "priority", "medical_judgement", "emr_source",
            "hersys_path")
_CODE = re.compile(r"^[A-Za-z0-9_.:\-]{1,80}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_EW = re.compile(r"^\s*(\S+)\s*(!=|<=|>=|=|<|>)\s*(.+?)\s*$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _bool(text: str) -> bool:
    return text.strip().lower() in _TRUE


def _name(text: str, fallback: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}"
    return name[:80]


def _open(path_or_bytes: Any):
    import openpyxl  # local: only the admin import needs it

    try:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            source: Any = io.BytesIO(path_or_bytes)
        elif isinstance(path_or_bytes, (str, Path)):
            source = str(path_or_bytes)
        elif hasattr(path_or_bytes, "read"):
            source = io.BytesIO(path_or_bytes.read())
        else:
            raise DefinitionError("Excelファイル（パスまたはバイト列）を指定してください。")
        return openpyxl.load_workbook(source, read_only=True, data_only=True)
    except DefinitionError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on broken files
        raise DefinitionError(f"Excelファイルを読み込めません：{type(exc).__name__}")


def _rows(sheet) -> list[list[str]]:
    rows = []
    for index, row in enumerate(sheet.iter_rows(values_only=True)):
        if index >= MAX_ROWS:
            raise DefinitionError(f"行数が多すぎます（{MAX_ROWS}行まで）。")
        rows.append([_cell(v) for v in row])
    return rows


def _options(text: str, row_no: int) -> list[dict[str, str]]:
    parts = [p.strip() for p in re.split(r"[\n|]", text) if p.strip()]
    options = []
    for n, part in enumerate(parts, start=1):
        match = re.match(r"^([^:=\t]+?)\s*[:=\t]\s*(.+)$", part)
        code, label = (match.group(1).strip(), match.group(2).strip()) if match else (part, part)
        if not _CODE.match(code):
            code = f"o{n}"
        options.append({"code": code, "label": label[:500]})
    if not options:
        raise DefinitionError(f"{row_no}行目：選択肢（answerOption）がありません。")
    return options


def from_excel_layout(path_or_bytes: Any) -> dict[str, Any]:
    """Read a workbook in the layout above and return a valid definition (or raise DefinitionError)."""
    workbook = _open(path_or_bytes)
    try:
        names = workbook.sheetnames
        sheet = workbook["Questionnaire"] if "Questionnaire" in names else workbook[names[0]]
        rows = _rows(sheet)
        rule_rows = _rows(workbook["rules"]) if "rules" in names else []
    except DefinitionError:
        raise
    except Exception as exc:
        raise DefinitionError(f"Excelファイルを読み込めません：{type(exc).__name__}")
    finally:
        workbook.close()

    meta: dict[str, str] = {}
    header_at = None
    for index, row in enumerate(rows):
        first = row[0] if row else ""
        if first.startswith("#"):
            meta[first[1:].strip().lower()] = row[1] if len(row) > 1 else ""
        elif first.lower() == "linkid":
            header_at = index
            break
    if header_at is None:
        raise DefinitionError("項目の見出し行（A列が「linkId」の行）が見つかりません。")
    columns = {name.lower(): i for i, name in enumerate(rows[header_at]) if name}
    for needed in ("linkid", "text", "type"):
        if needed not in columns:
            raise DefinitionError(f"見出し行に「{needed}」列がありません。")

    def col(row: list[str], name: str) -> str:
        i = columns.get(name)
        return row[i] if i is not None and i < len(row) else ""

    sections: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], str, str, int]] = []
    link_to_id: dict[str, str] = {}
    section: str | None = None
    group: dict[str, Any] | None = None

    def ensure_section() -> str:
        nonlocal section
        if section is None:
            section = "main"
            sections.append({"id": "main", "label": "項目"})
        return section

    for index in range(header_at + 1, len(rows)):
        row, row_no = rows[index], index + 1
        link_id, text, raw_type = col(row, "linkid"), col(row, "text"), col(row, "type").lower()
        if not link_id and not raw_type:
            continue
        if not link_id or not raw_type:
            raise DefinitionError(f"{row_no}行目：linkId と type は必須です。")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,120}", link_id):
            raise DefinitionError(f"{row_no}行目：linkId「{link_id[:40]}」に使えない文字があります。")
        if group is not None and not link_id.startswith(group["link_id"] + "_"):
            group = None
        if raw_type == "display":
            continue
        if raw_type == "group":
            if _bool(col(row, "repeats")):
                max_occurs = col(row, "maxoccurs")
                group = {"id": _name(link_id, "g"), "label": text or link_id, "section": ensure_section(),
                         "max": int(max_occurs) if max_occurs.isdigit() else 4, "link_id": link_id}
                if col(row, "help"):
                    group["help"] = col(row, "help")
                groups.append(group)
            else:
                sid = link_id if _NAME.match(link_id) else _name(link_id, "s")
                sections.append({"id": sid, "label": text or sid})
                section, group = sid, None
            continue
        item_type = _TYPES.get(raw_type)
        if item_type is None:
            raise DefinitionError(f"{row_no}行目：type「{raw_type[:40]}」には対応していません。")
        definition = col(row, "definition")
        if definition.startswith("urn:hersys-assist:item:"):
            definition = definition[len("urn:hersys-assist:item:"):]
        if group is not None:
            iid = f"{group['id']}.{_name(link_id, 'i')}"
        elif definition:
            iid = definition
        else:
            iid = f"{ensure_section()}.{_name(link_id, 'i')}"
        item: dict[str, Any] = {"id": iid, "label": text or link_id, "type": item_type, "section": ensure_section()}
        if group is not None:
            item["group"] = group["id"]
        if raw_type == "boolean":
            item["values"] = [{"code": "true", "label": "はい"}, {"code": "false", "label": "いいえ"}]
        elif item_type in ("enum", "multi_enum"):
            if item_type == "enum" and _bool(col(row, "repeats")):
                item["type"] = "multi_enum"
            item["values"] = _options(col(row, "answeroption"), row_no)
        item["required"] = _bool(col(row, "required"))
        item["priority"] = _bool(col(row, "priority"))
        item["medical_judgement"] = _bool(col(row, "medical_judgement"))
        for column, key in (("help", "help"), ("emr_source", "emr_source"), ("hersys_path", "hersys_path")):
            if col(row, column):
                item[key] = col(row, column)
        if col(row, "maxlength").isdigit():
            item["max_length"] = max(1, min(int(col(row, "maxlength")), 20000))
        item["link_id"] = link_id
        link_to_id[link_id] = iid
        items.append(item)
        if col(row, "enablewhen"):
            if group is not None:
                raise DefinitionError(f"{row_no}行目：繰り返しグループ内の項目には enableWhen を付けられません。")
            pending.append((item, col(row, "enablewhen"), col(row, "enablebehavior").lower(), row_no))

    by_id = {item["id"]: item for item in items}
    for item, text, behavior, row_no in pending:
        parts = []
        for clause in [c.strip() for c in re.split(r"[\n;]", text) if c.strip()]:
            words = clause.split()
            if len(words) >= 2 and words[-1].lower() == "exists":
                ref, negate = words[0], len(words) > 2 and words[1].lower() in ("not", "!")
                if ref not in link_to_id:
                    raise DefinitionError(f"{row_no}行目：enableWhen の linkId「{ref[:40]}」がありません。")
                parts.append({"item": link_to_id[ref], "empty": negate})
                continue
            match = _EW.match(clause)
            if not match or match.group(1) not in link_to_id:
                raise DefinitionError(f"{row_no}行目：enableWhen「{clause[:60]}」を解釈できません。")
            ref, op, value = link_to_id[match.group(1)], match.group(2), match.group(3).strip().strip("'\"")
            target = by_id[ref]
            operand: Any = value
            if target["type"] in ("integer", "age") and re.fullmatch(r"-?\d+", value):
                operand = int(value)
            key = {"=": "includes" if target["type"] == "multi_enum" else "eq", "!=": "ne", "<": "lt", "<=": "lte",
                   ">": "gt", ">=": "gte"}[op]
            parts.append({"item": ref, key: operand})
        if parts:
            item["visible_when"] = parts[0] if len(parts) == 1 else {("or" if behavior == "any" else "and"): parts}

    if not items:
        raise DefinitionError("項目の行がありません。")
    rules = _rules(rule_rows)
    version = meta.get("version") or ""
    if not version:
        raise DefinitionError("ヘッダー行「#version」がありません。")
    defn: dict[str, Any] = {
        "format": FORMAT,
        **({"form": meta["form"].strip()} if meta.get("form", "").strip() else {}),
        "catalog": meta.get("catalog") or meta.get("sheetid") or "",
        "disease": meta.get("disease") or meta.get("category") or "",
        "version": version[:40],
        "title": (meta.get("title") or meta.get("name") or "")[:500],
        "sections": sections,
        "groups": groups,
        "items": items,
        "rules": rules,
        "changes_from_previous": [meta["description"]] if meta.get("description") else [],
    }
    return ensure_valid(defn)


def _rules(rows: list[list[str]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    header = [c.lower() for c in rows[0]]
    if "id" not in header or "kind" not in header:
        raise DefinitionError("rules シートの1行目は id・kind・params・severity・message の見出しにしてください。")
    out = []
    for index, row in enumerate(rows[1:], start=2):
        cells = {header[i]: row[i] for i in range(min(len(header), len(row)))}
        if not cells.get("id"):
            continue
        try:
            params = json.loads(cells.get("params") or "{}")
        except ValueError:
            raise DefinitionError(f"rules シート {index}行目：params がJSONではありません。")
        out.append({"id": cells["id"], "kind": cells.get("kind", ""), "params": params,
                    "severity": cells.get("severity") or "error", "message": cells.get("message") or cells["id"]})
    return out
