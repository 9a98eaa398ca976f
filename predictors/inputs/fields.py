"""Field types shared by the tabular input schemas.

A schema is the single description of a model's inputs: the HTML form, the JSON API
and the training pipeline all read it, so units, ranges, choices and their training
encoding exist in exactly one place.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

# What a clinician types: a sign, digits, and a point or a comma as the decimal mark.
# Exponents, "nan", "inf" and grouped thousands are never numbers a form field means.
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)", re.ASCII)
# "1,000" is one thousand in one country and one in another: refused, never guessed.
_AMBIGUOUS_COMMA = re.compile(r"[+-]?0*[1-9][0-9]{0,2},[0-9]{3}", re.ASCII)
# Where a record's inputs keep what was entered in another unit than the model's: {name: {value, unit}}.
AS_ENTERED = "as_entered"
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-"})  # minus sign and en dash, as word processors write them


@dataclass(frozen=True)
class Choice:
    value: str  # the API's word for it
    label: str  # the clinician's words for it
    code: float  # what the model was trained on


@dataclass(frozen=True)
class Unit:
    """Another unit a field's number may be entered in: one of it is `per` of the field's own unit.

    The number is converted once, by the schema, to the field's unit (the model's), kept to
    `places` decimals; its range is checked in the unit it was entered in, given to `places`
    decimals too.
    """

    name: str
    per: Decimal
    places: int = 1


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
    # Other units it may be entered in; the clinician (or the API's `<name>_unit`) chooses, the
    # field's own unit by default.
    units: tuple[Unit, ...] = ()
    # The form's question where the label (said in factors, notes and the inputs list) is too short for it.
    question: str = ""
    # What the model is given for an unknown value when it never learnt what a missing one means; NaN otherwise.
    unknown_as: float | None = None

    @property
    def unit_field(self) -> str:
        """The name of the unit chosen beside it (form and API), for a field with other units."""
        return f"{self.name}_unit" if self.units else ""

    @property
    def unit_names(self) -> tuple[str, ...]:
        return (self.unit, *(u.name for u in self.units))

    def range_in(self, unit: str) -> tuple[float, float]:
        """The accepted range in `unit`: the field's own, or converted to the other unit's decimals."""
        other = next((u for u in self.units if u.name == unit), None)
        if other is None:
            return self.minimum, self.maximum
        return (float(round(Decimal(str(self.minimum)) / other.per, other.places)),
                float(round(Decimal(str(self.maximum)) / other.per, other.places)))

    def to_own_unit(self, value: Decimal | int | float, unit: str) -> Decimal | int | float:
        """A number entered in `unit` in the field's own unit: the one conversion it gets."""
        other = next((u for u in self.units if u.name == unit), None)
        if other is None:
            return value
        return round(Decimal(str(value)) * other.per, other.places)

    def parse(self, text: str) -> Decimal | None:
        """Read a number as typed into a form; blank is None. Raises ValueError with a message.

        A decimal comma is a decimal mark ("0,5" is 0.5): phones in most of Europe offer
        only a comma on their number pad. The result is exact (a Decimal), so a number
        of any size reaches the range check instead of overflowing on the way.
        """
        text = text.strip().translate(_MINUS_SIGNS)
        if not text:
            return None
        if not _NUMBER_TEXT.fullmatch(text):
            raise ValueError("Enter a number, such as 12 or 0.5.")
        if _AMBIGUOUS_COMMA.fullmatch(text):
            raise ValueError(f"Type {text.replace(',', '')} or {text.replace(',', '.')}: "
                             "a comma before three digits could mean either.")
        return Decimal(text.replace(",", "."))

    def display(self, value: Any) -> str:
        if value is None:
            return "Not given"
        number = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{number} {self.unit}".rstrip()

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        return f"{self.label} {self.display(value)}"


@dataclass(frozen=True)
class ChoiceField:
    name: str
    label: str
    choices: tuple[Choice, ...]
    required: bool = True
    help: str = ""

    def display(self, value: Any) -> str:
        return "Not given" if value is None else self.choice(value).label

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        return f"{self.label}: {self.display(value)}"

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

    def display(self, value: Any) -> str:
        return "Not given" if value is None else ("Yes" if value else "No")

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.label} (not given)"
        return f"{self.label}: {self.display(value).lower()}"


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
class FactorContext:
    """What the model learnt that a clinician would not expect, said beside the factor it explains:
    a finding at one of `values` that moved the estimate in `direction` ("raised" or "lowered")."""

    finding: str  # the schema field's name
    values: tuple[Any, ...]
    direction: str
    text: str

    def explains(self, factor: Mapping[str, Any]) -> bool:
        return (factor.get("feature") == self.finding and factor.get("value") in self.values
                and factor.get("direction") == self.direction)


@dataclass(frozen=True)
class DiagnosticThreshold:
    """A finding that answers the question on its own, whatever the model estimates: said before the
    estimate on the result page, and with its source on the model card."""

    finding: str  # the schema field's name
    at_least: float
    criterion: str  # the criterion as its source states it
    source: str
    meaning: str  # what meeting it means for this result, in a sentence
    next_step: str


@dataclass(frozen=True)
class TabularSchema:
    """The inputs of one tabular model, in the feature order the model was trained on."""

    model: str
    fields: tuple[Field, ...]
    positive_label: str
    negative_label: str
    diagnostic: tuple[DiagnosticThreshold, ...] = ()
    factor_context: tuple[FactorContext, ...] = ()
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
        same way on every path. A number entered in another of its units
        (`values["<name>_unit"]`) is checked in that unit and converted to the field's own;
        what was entered is kept under `AS_ENTERED`, so the record says it.
        """
        errors: dict[str, list[str]] = {}
        cleaned: dict[str, Any] = {}
        entered: dict[str, dict[str, Any]] = {}
        for f in self.fields:
            value = values.get(f.name)
            if value is None:
                if f.required:
                    errors[f.name] = ["This field is required."]
                cleaned[f.name] = None
                continue
            if isinstance(f, NumberField):
                unit = values.get(f.unit_field) or f.unit if f.units else f.unit
                if unit not in f.unit_names:
                    errors[f.unit_field] = [f"Choose one of: {', '.join(f.unit_names)}."]
                    continue
                problem = _number_problem(f, value, unit)
                if problem:
                    errors[f.name] = [problem]
                    continue
                if f.units:
                    entered[f.name] = {"value": _plain(value), "unit": unit}
                    value = f.to_own_unit(value, unit)
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
        if entered:
            cleaned[AS_ENTERED] = entered
        return cleaned

    def from_json(self, payload: Any) -> dict[str, Any]:
        """Check a decoded JSON body's shape and types; absent optional fields mean unknown.

        Strings are never read as numbers here: an API client that sends "120" has a
        bug worth hearing about, unlike a browser form, where everything is text.
        """
        if not isinstance(payload, dict):
            raise InputMalformed({"__all__": ["The body must be a JSON object."]})
        unit_fields = {f.unit_field: f for f in self.fields if isinstance(f, NumberField) and f.units}
        errors: dict[str, list[str]] = {name: ["Unknown field."] for name in payload
                                        if name not in self.by_name and name not in unit_fields}
        for name, f in unit_fields.items():
            if payload.get(name) is not None and not isinstance(payload[name], str):
                errors[name] = [f"Expected one of: {', '.join(f.unit_names)}."]
        for f in self.fields:
            value = payload.get(f.name)
            if f.name not in payload:
                if f.required:
                    errors[f.name] = ["This field is required."]
            elif value is None:
                if f.required:
                    errors[f.name] = ["This field is required; null is not allowed."]
            elif isinstance(f, NumberField) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                errors[f.name] = [_expected_number(f, value)]
            elif isinstance(f, ChoiceField) and not isinstance(value, str):
                errors[f.name] = [f"Expected one of: {', '.join(f.values)}."]
            elif isinstance(f, BooleanField) and not isinstance(value, bool):
                errors[f.name] = ["Expected true or false."]
        if errors:
            raise InputMalformed(errors)
        return {**{f.name: payload.get(f.name) for f in self.fields},
                **{name: payload.get(name) for name in unit_fields}}

    def encode(self, cleaned: Mapping[str, Any]) -> list[float]:
        """Turn validated values into the model's feature row; unknown becomes NaN, or the field's `unknown_as`."""
        row: list[float] = []
        for f in self.fields:
            value = cleaned.get(f.name)
            if value is None:
                unknown_as = getattr(f, "unknown_as", None)
                row.append(math.nan if unknown_as is None else unknown_as)
            elif isinstance(f, ChoiceField):
                row.append(f.choice(value).code)
            else:
                row.append(float(value))
        return row


def _number_problem(f: NumberField, value: Any, unit: str) -> str | None:
    """Why a parsed number cannot be used, or None.

    Ints and Decimals of any size compare exactly with the float limits; nothing is
    converted to float before the range check, so 10**400 is out of range, not an
    OverflowError.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return "Enter a number."
    if isinstance(value, Decimal) and not value.is_finite() or isinstance(value, float) and not math.isfinite(value):
        return "Enter a finite number."
    minimum, maximum = f.range_in(unit)
    if value < minimum or value > maximum:
        return f"Enter a value between {minimum:g} and {maximum:g}{f' {unit}' if unit else ''}."
    if f.integer and value != int(value):
        return "Enter a whole number."
    return None


def _plain(value: Any) -> int | float:
    """A number as JSON keeps it: 7.8, not Decimal('7.8')."""
    return value if isinstance(value, int) else float(value)


def _expected_number(f: NumberField, value: Any) -> str:
    """The API's message for a non-number, naming the number a string seems to hold."""
    if isinstance(value, str):
        try:
            number = f.parse(value)
        except ValueError:
            number = None
        if number is not None:
            return f"Expected a JSON number, not the string {value!r}; send {number} without quotes."
    return "Expected a number."
