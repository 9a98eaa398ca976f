"""URL converters: only declared model names resolve, so views never see another."""
from django.urls import register_converter

from .catalogue import IMAGE, NAMES, TABULAR


def _converter(names: list[str]) -> type:
    class Converter:
        regex = "|".join(names)

        def to_python(self, value: str) -> str:
            return value

        def to_url(self, value: str) -> str:
            return value

    return Converter


register_converter(_converter(list(NAMES)), "any_model")
register_converter(_converter(list(TABULAR)), "tabular_model")
register_converter(_converter(list(IMAGE)), "image_model")
