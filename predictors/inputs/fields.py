"""Field types shared by the tabular input schemas.

A schema is the single description of a model's inputs: the HTML form, the JSON API
and the training pipeline all read it, so units, ranges, choices and their training
encoding exist in exactly one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Choice:
    value: str  # the API's word for it
    label: str  # the clinician's words for it
    code: float  # what the model was trained on


@dataclass(frozen=True)
class NumberField:
    name: str
    label: str
    unit: str
    minimum: float
    maximum: float
    required: bool = True
    integer: bool = False
    help: str = ""
    step: str = "any"

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        number = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{self.label} {number} {self.unit}".rstrip()


@dataclass(frozen=True)
class ChoiceField:
    name: str
    label: str
    choices: tuple[Choice, ...]
    required: bool = True
    help: str = ""

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        return f"{self.label}: {self.choice(value).label}"

    def choice(self, value: str) -> Choice:
        return next(c for c in self.choices if c.value == value)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.choices)


@dataclass(frozen=True)
class BooleanField:
    name: str
    label: str
    required: bool = True
    help: str = ""

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        return f"{self.label}: {'yes' if value else 'no'}"


Field = NumberField | ChoiceField | BooleanField


class InputMalformed(Exception):
    """A JSON body of the wrong shape: unknown or missing fields, values of the wrong type."""

    def __init__(self, errors: Mapping[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = dict(errors)


class InputInvalid(Exception):
    """Values of the right types that a clinician could not have meant (range, choice)."""

    def __init__(self, errors: Mapping[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class TabularSchema:
    """The inputs of one tabular model, in the feature order the model was trained on."""

    model: str
    fields: tuple[Field, ...]
    positive_label: str
    negative_label: str
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check typed values (numbers, choice words, booleans or None) against the schema.

        Type parsing is the caller's job (the form parses text, the API checks JSON
        types); this is where both meet, so the same value is accepted or refused the
        same way on every path.
        """
        errors: dict[str, list[str]] = {}
        cleaned: dict[str, Any] = {}
        for f in self.fields:
            value = values.get(f.name)
            if value is None:
                if f.required:
                    errors[f.name] = ["This field is required."]
                cleaned[f.name] = None
                continue
            if isinstance(f, NumberField):
                problem = _number_problem(f, value)
                if problem:
                    errors[f.name] = [problem]
                    continue
                value = int(value) if f.integer else float(value)
            elif isinstance(f, ChoiceField):
                if value not in f.values:
                    errors[f.name] = [f"Choose one of: {', '.join(f.values)}."]
                    continue
            elif isinstance(f, BooleanField) and not isinstance(value, bool):
                errors[f.name] = ["Must be true or false."]
                continue
            cleaned[f.name] = value
        if errors:
            raise InputInvalid(errors)
        return cleaned

    def from_json(self, payload: Any) -> dict[str, Any]:
        """Check a decoded JSON body's shape and types; absent optional fields mean unknown.

        Strings are never read as numbers here: an API client that sends "120" has a
        bug worth hearing about, unlike a browser form, where everything is text.
        """
        if not isinstance(payload, dict):
            raise InputMalformed({"__all__": ["The body must be a JSON object."]})
        errors: dict[str, list[str]] = {name: ["Unknown field."] for name in payload if name not in self.by_name}
        for f in self.fields:
            value = payload.get(f.name)
            if f.name not in payload:
                if f.required:
                    errors[f.name] = ["This field is required."]
            elif value is None:
                if f.required:
                    errors[f.name] = ["This field is required; null is not allowed."]
            elif isinstance(f, NumberField) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                errors[f.name] = ["Expected a number."]
            elif isinstance(f, ChoiceField) and not isinstance(value, str):
                errors[f.name] = [f"Expected one of: {', '.join(f.values)}."]
            elif isinstance(f, BooleanField) and not isinstance(value, bool):
                errors[f.name] = ["Expected true or false."]
        if errors:
            raise InputMalformed(errors)
        return {f.name: payload.get(f.name) for f in self.fields}

    def encode(self, cleaned: Mapping[str, Any]) -> list[float]:
        """Turn validated values into the model's feature row; unknown becomes NaN."""
        row: list[float] = []
        for f in self.fields:
            value = cleaned.get(f.name)
            if value is None:
                row.append(math.nan)
            elif isinstance(f, ChoiceField):
                row.append(f.choice(value).code)
            else:
                row.append(float(value))
        return row


def _number_problem(f: NumberField, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "Enter a number."
    if not math.isfinite(value):
        return "Enter a finite number."
    if f.integer and float(value) != int(value):
        return "Enter a whole number."
    if value < f.minimum or value > f.maximum:
        unit = f" {f.unit}" if f.unit else ""
        return f"Enter a value between {f.minimum:g} and {f.maximum:g}{unit}."
    return None
