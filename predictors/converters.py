"""URL converters: only declared model names resolve, so views never see another."""
from django.urls import register_converter

from .registry import MODEL_SPECS


def _converter(names: list[str]) -> type:
    class Converter:
        regex = "|".join(names)

        def to_python(self, value: str) -> str:
            return value

        def to_url(self, value: str) -> str:
            return value

    return Converter


register_converter(_converter([s.name for s in MODEL_SPECS]), "any_model")
register_converter(_converter([s.name for s in MODEL_SPECS if s.input == "tabular"]), "tabular_model")
register_converter(_converter([s.name for s in MODEL_SPECS if s.input != "tabular"]), "image_model")
