"""The launch benchmark's baseline: a bare Django view rendering a plain form with the same number of fields.

No sign-in, no database, no form engine: Django's request/response cycle, the project's middleware, a
`django.forms.Form` of N pre-filled CharFields and a small template. Served only by `benchmarks.urls`.
"""
from __future__ import annotations

from functools import lru_cache

from django import forms
from django.http import HttpResponse, HttpResponseBadRequest
from django.template import engines
from django.views.decorators.http import require_GET

PAGE = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>ベースライン</title></head>
<body><main><h1>発生届（ベースライン）</h1>
<form method="post">{% csrf_token %}
{% for field in form %}<div class="item"><div class="label">{{ field.label_tag }}</div><div class="field">{{ field }}</div></div>
{% endfor %}<button type="submit" name="action" value="save">保存</button></form></main></body></html>"""

MAX_FIELDS = 2000
_forms: dict[int, type[forms.Form]] = {}


def plain_form_class(n: int) -> type[forms.Form]:
    """A Form class with fields f000 … f(n-1), built once per size."""
    if n not in _forms:
        attrs = {f"f{i:03d}": forms.CharField(label=f"項目{i:03d}", required=False, max_length=200)
                 for i in range(n)}
        _forms[n] = type(f"PlainForm{n}", (forms.Form,), attrs)
    return _forms[n]


@require_GET
def plain_form(request):
    try:
        n = int(request.GET.get("fields", "0"))
    except ValueError:
        return HttpResponseBadRequest("fields")
    if not 0 < n <= MAX_FIELDS:
        return HttpResponseBadRequest("fields")
    form = plain_form_class(n)(initial={f"f{i:03d}": f"値{i}" for i in range(n)})
    return HttpResponse(_template().render({"form": form}, request))


@lru_cache(maxsize=1)
def _template():
    """Compiled once, as the product's templates are by Django's cached loader."""
    return engines["django"].from_string(PAGE)
