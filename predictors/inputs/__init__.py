"""Input schemas of the tabular models, one module per model."""
from . import diabetes, heart
from .fields import InputInvalid, InputMalformed, TabularSchema

TABULAR_SCHEMAS: dict[str, TabularSchema] = {
    diabetes.SCHEMA.model: diabetes.SCHEMA,
    heart.SCHEMA.model: heart.SCHEMA,
}

__all__ = ["TABULAR_SCHEMAS", "InputInvalid", "InputMalformed", "TabularSchema"]
