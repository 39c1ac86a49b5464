"""``{% load form_fields %}`` then ``{% field_html f %}``: one field of the render model as HTML
(``notifications.field_html``; the form page's fields without a template include per field — issue 13)."""
from __future__ import annotations

from django import template

from ..field_html import field_html as _field_html

register = template.Library()


@register.simple_tag(takes_context=True)
def field_html(context, f):
    """``show_sources`` comes from the including context (the admin preview shows each item's EMR source)."""
    return _field_html(f, bool(context.get("show_sources")))
