"""Template helpers: the one display rule for probabilities, and the site's disclaimer."""
from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import formatting
from ..catalogue import MODEL_SPECS, ModelSpec

register = template.Library()


@register.filter
def percent(probability: float | None, ceiling: float | None = None) -> str:
    """`{{ p|percent }}`, or `{{ p|percent:view.ceiling }}` under the card's ceiling: formatting.percent,
    so every page prints probabilities alike."""
    if probability is None or probability == "":
        return ""
    return formatting.percent(float(probability), None if ceiling in (None, "") else float(ceiling))


@register.simple_tag
def disclaimer() -> SafeString:
    return format_html("<strong>{}</strong> {}", formatting.DISCLAIMER_HEAD, formatting.DISCLAIMER_BODY)


@register.simple_tag
def model_specs() -> tuple[ModelSpec, ...]:
    """`{% model_specs as specs %}`: the catalogue, for the navigation."""
    return MODEL_SPECS
