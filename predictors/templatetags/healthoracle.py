"""Template helpers: the one display rule for probabilities, and the site's disclaimer."""
from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import presentation
from ..catalogue import MODEL_SPECS, ModelSpec

register = template.Library()


@register.filter
def percent(probability: float | None) -> str:
    """`{{ p|percent }}`: presentation.percent, so every page prints probabilities alike."""
    if probability is None or probability == "":
        return ""
    return presentation.percent(float(probability))


@register.simple_tag
def disclaimer() -> SafeString:
    return format_html("<strong>{}</strong> {}", presentation.DISCLAIMER_HEAD, presentation.DISCLAIMER_BODY)


@register.simple_tag
def model_specs() -> tuple[ModelSpec, ...]:
    """`{% model_specs as specs %}`: the catalogue, for the navigation."""
    return MODEL_SPECS
