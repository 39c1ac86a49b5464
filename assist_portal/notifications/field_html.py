"""The HTML of one field of ``formengine.render_model``, built in Python (issue 13).

The form page has 65+ fields; rendering each through ``{% include "_field.html" %}`` (and two nested includes) cost
three quarters of the page's CPU: Django's template engine resolves every ``{{ f.x.y }}`` and every ``{% if %}``
through its generic lookup machinery, ~200 include nodes and ~1,700 variable nodes per page. This module prints the
same markup — the same elements, attributes, ``aria-*`` wiring, labels and texts — with plain string joins and the
same escaping as Django's autoescape (``conditional_escape``). ``tests/portal/test_field_html.py`` renders every
field of real form pages through both this module and the former template (kept there as the reference) and
requires the same HTML up to whitespace runs.

Every decision is still the engine's (``formengine.render``): this only prints, like the template did.
"""
from __future__ import annotations

from functools import lru_cache
from html import escape as _html_escape
from typing import Any

from django.utils.safestring import SafeData, mark_safe

from jpinput import normalise_postal


def _e(value: Any) -> str:
    """Django's autoescape of one ``{{ value }}`` (strings, numbers; a SafeString is printed as it is)."""
    if isinstance(value, SafeData):
        return str(value)
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    return _html_escape(str(value), quote=True)


@lru_cache(maxsize=8192)
def _s(value: str) -> str:
    """`_e` of a string that comes from the form definition (ids, names, labels, codes, help texts): the same
    few thousand strings on every page, escaped once per process. Patient values never go through here."""
    return _e(value)


def _postal(value: Any) -> str:
    """The ``postal`` filter (ja_format): 7 digits → 123-4567; anything else as it is."""
    if value in (None, ""):
        return ""
    return normalise_postal(value) or value


def _flags(f: dict[str, Any]) -> str:
    out = ['\n<span class="flags">']
    if f.get("required"):
        out.append('<span class="flag flag-required">必須</span>')
    if f.get("priority"):
        out.append('<span class="flag flag-priority">優先</span>')
    if f.get("medical_judgement"):
        out.append('<span class="flag flag-mj">医師確認</span>')
    out.append('</span>\n')
    prov = f.get("provenance") or {}
    detail = prov.get("detail_ja")
    out.append(f'<span class="badge src-{_s(prov.get("kind", ""))}"')
    if detail:
        out.append(f' title="{_e(detail)}"')
    out.append(f'>{_s(prov.get("label_ja", ""))}</span>')
    if detail:
        out.append(f'<span class="src-detail">{_e(detail)}</span>')
    out.append("\n")
    return "".join(out)


def _after(f: dict[str, Any], show_sources: bool) -> str:
    """Suggestions, copy button, help, EMR source, character counter and the field's own messages."""
    hid = _s(f["html_id"])
    out = ["\n"]
    suggestion = f.get("suggestion")
    if suggestion:
        out.append(f'<ul class="suggestion" data-suggestion="{_s(f["id"])}">')
        values = f.get("values") or []
        for s in suggestion.get("items", []) or []:
            applied = s.get("applied")
            out.append(f'<li>{"自動選択" if applied else "候補"}：「{_e(s.get("label", ""))}」— {_e(s.get("reason_ja", ""))}')
            if not applied and s.get("value") not in values:
                out.append(f' <button type="submit" name="accept" value="{_s(f["id"])}|{_e(s.get("value", ""))}"'
                           f' class="adopt">採用</button>')
            out.append("</li>")
        out.append("</ul>")
    out.append("\n")
    if f.get("copy_from"):
        out.append(f'<button type="button" class="secondary copy-from" data-copy-from="{_s(f["copy_from"])}"'
                   f' data-copy-to="{hid}" hidden>「{_s(f.get("copy_from_label", ""))}」と同じ</button>')
    out.append("\n")
    if f.get("help"):
        out.append(f'<div class="hint" id="{hid}-help">{_s(f["help"])}</div>')
    out.append("\n")
    if f.get("emr_source") and show_sources:
        out.append(f'<div class="hint">電子カルテの取得元：{_s(f["emr_source"])}</div>')
    out.append("\n")
    maxlength = (f.get("input") or {}).get("maxlength")
    if f.get("widget") == "textarea" and maxlength:
        out.append(f'<div class="hint counter" id="{hid}-count">{len(f.get("value") or "")}／{_e(maxlength)}文字</div>')
    out.append(f'\n<ul class="msgs" id="{hid}-msgs">')
    for m in f.get("messages") or []:
        out.append(f'<li class="{_s(m["severity"])}">{_e(m["text_ja"])}</li>')
    out.append("</ul>\n")
    return "".join(out)


def _described(d: str, f: dict[str, Any], extra: str = "") -> str:
    """aria-describedby="<id>-msgs[ extra][ <id>-help]" and aria-invalid when the field has an error."""
    help_ref = f" {d}-help" if f.get("help") else ""
    invalid = ' aria-invalid="true"' if f.get("has_error") else ""
    return f' aria-describedby="{d}-msgs{extra}{help_ref}"{invalid}'


def _choice(f: dict[str, Any], d: str, show_sources: bool) -> str:
    widget = f["widget"]
    name = _s(f["name"])
    cls = "item choice-item" + (" priority-missing" if f.get("highlight") else "") + (
        " has-error" if f.get("has_error") else "")
    out = [f'\n<fieldset class="{cls}" id="{d}" data-item="{_s(f["id"])}" data-html-id="{d}"']
    if f.get("visible_when_json"):
        out.append(f' data-visible-when="{_s(f["visible_when_json"])}"')
    if not f.get("visible"):
        out.append(" hidden")
    out.append(_described(d, f))
    out.append(f'>\n<legend class="label"><span class="label-text">{_s(f["label"])}</span>{_flags(f)}</legend>\n'
               '<div class="field">\n<div class="options')
    if widget == "checkboxes":
        out.append(' checkbox-group" data-roving>\n')
    else:
        out.append('">\n')
    if widget == "radio":
        for o in f.get("options") or []:
            out.append(f'<label class="opt"><input type="radio" name="{name}" value="{_s(o["code"])}"'
                       f'{" checked" if o.get("selected") else ""}> {_s(o["label"])}</label>')
        out.append(f'\n<label class="opt opt-none"><input type="radio" name="{name}" value=""'
                   f'{"" if f.get("has_value") else " checked"}> 未選択</label>\n')
    else:
        out.append(f'\n<input type="hidden" name="{name}" value="">\n')
        for o in f.get("options") or []:
            out.append(f'<label class="opt"><input type="checkbox" name="{name}" value="{_s(o["code"])}"'
                       f'{" checked" if o.get("selected") else ""}> {_s(o["label"])}</label>')
        out.append("\n")
    out.append(f'\n</div>\n{_after(f, show_sources)}\n</div>\n</fieldset>\n')
    return "".join(out)


def _control(f: dict[str, Any], d: str) -> str:
    widget = f["widget"]
    name = _s(f["name"])
    hints = f.get("input") or {}
    maxlength = hints.get("maxlength")
    if widget == "select":
        options = "".join(f'<option value="{_s(o["code"])}"{" selected" if o.get("selected") else ""}>'
                          f'{_s(o["label"])}</option>' for o in f.get("options") or [])
        return (f'\n<select name="{name}" id="{d}"{_described(d, f)}><option value="">（未選択）</option>\n'
                f'{options}</select>\n')
    if widget == "textarea":
        data_max = f' data-maxlength="{_e(maxlength)}"' if maxlength else ""
        count = f" {d}-count" if maxlength else ""
        return (f'\n<textarea name="{name}" id="{d}" rows="3"{data_max}{_described(d, f, count)}>'
                f'{_e(f.get("value", ""))}</textarea>\n')
    if widget == "age":
        units = "".join(f'<option value="{_s(o["code"])}"{" selected" if o.get("selected") else ""}>'
                        f'{_s(o["label"])}</option>' for o in f.get("unit_options") or [])
        return (f'\n<span class="age"><input type="text" name="{name}" id="{d}" value="{_e(f.get("value", ""))}"'
                f' inputmode="numeric" autocomplete="off" class="short"{_described(d, f)}>\n'
                f'<label for="{d}-unit" class="visually-hidden">{_s(f["label"])}の単位</label>'
                f'<select name="{name}__unit" id="{d}-unit">{units}</select></span>\n')
    if widget == "date":
        help_ref = f" {d}-help" if f.get("help") else ""
        invalid = ' aria-invalid="true"' if f.get("has_error") else ""
        return (f'\n<span class="date-box"><input type="text" name="{name}" id="{d}" value="{_e(f.get("value", ""))}"'
                f' inputmode="numeric" autocomplete="off" placeholder="{_s(hints.get("placeholder", ""))}"'
                f' class="date" data-date aria-describedby="{d}-understood {d}-msgs{help_ref}"{invalid}></span>\n'
                f'<span class="understood" id="{d}-understood" aria-live="polite">{_e(f.get("understood", ""))}</span>\n')
    value = _postal(f.get("value")) if widget == "postal" else f.get("value", "")
    out = [f'\n<input type="{"tel" if widget == "tel" else "text"}" name="{name}" id="{d}" value="{_e(value)}"']
    for key in ("inputmode", "autocomplete", "placeholder"):
        if hints.get(key):
            out.append(f' {key}="{_s(hints[key])}"')
    if maxlength:
        out.append(f' data-maxlength="{_e(maxlength)}"')
    if hints.get("lang"):
        out.append(f' lang="{_s(hints["lang"])}"')
    out.append(f' class="w-{_s(widget)}"')
    if widget == "kana":
        out.append(" data-kana")
    elif widget == "postal":
        out.append(" data-postal")
        if f.get("address_for"):
            out.append(f' data-address-for="{_s(f["address_for"])}"')
    if f.get("postal_for"):
        out.append(f' data-address-of="{_s(f["postal_for"])}"')
    out.append(_described(d, f))
    out.append(">\n")
    return "".join(out)


def field_html(f: dict[str, Any], show_sources: bool = False) -> str:
    """One field (a render-model field dict) as HTML, marked safe: every value in it is escaped here."""
    d = _s(f["html_id"])
    if f["widget"] in ("radio", "checkboxes"):
        return mark_safe(_choice(f, d, show_sources))
    cls = "item" + (" priority-missing" if f.get("highlight") else "") + (" has-error" if f.get("has_error") else "")
    out = [f'\n<div class="{cls}" id="item-{d}" data-item="{_s(f["id"])}" data-html-id="{d}"']
    if f.get("visible_when_json"):
        out.append(f' data-visible-when="{_s(f["visible_when_json"])}"')
    if not f.get("visible"):
        out.append(" hidden")
    out.append(f'>\n<div class="label"><label for="{d}" class="label-text">{_s(f["label"])}</label>{_flags(f)}</div>\n'
               f'<div class="field">\n{_control(f, d)}\n{_after(f, show_sources)}\n</div>\n</div>\n')
    return mark_safe("".join(out))
