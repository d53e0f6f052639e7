from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict | None, key: object) -> object:
    """mapping[key] in a template, None when absent (or when the page passed no mapping)."""
    return (mapping or {}).get(key)
