"""HTML forms, generated from the catalogue (each form with the optional image it pairs with) and the
input schemas, and the image upload field.

Numbers are read by the schema's own parser (decimal commas, exact big numbers);
ranges and choices are checked by the schema, the same code the JSON API uses, so a
value is accepted or refused the same way on both.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings

from .inputs import TABULAR_SCHEMAS, InputInvalid
from .inputs.fields import BooleanField, ChoiceField, NumberField, TabularSchema
from .catalogue import CHOICES, MODEL_SPECS, SPECS, ModelSpec, image_format_words
from .formatting import file_size
from .models import REFERENCE_MAX_LENGTH
from .services import ImageRefused, ImageRequest, TabularRequest

if TYPE_CHECKING:
    from .images.decode import DecodedImage

UNKNOWN = ("", "Unknown")


class ScanField(forms.FileField):
    """An uploaded image, decoded within the size and pixel limits and gated by kind."""

    def __init__(self, *, kind: str, **kwargs: Any):
        self.kind = kind
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs={"accept": "image/*"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> "DecodedImage | None":
        from .images.decode import ImageRejected, decode  # Pillow + numpy: only when an image arrives
        from .images.gate import gate

        upload = super().clean(data, initial)
        if not upload:
            return None
        if upload.size > settings.MAX_UPLOAD_BYTES:  # refuse before reading it into memory
            raise forms.ValidationError(
                f"The file is {file_size(upload.size)}; the limit is {file_size(settings.MAX_UPLOAD_BYTES)}. "
                "Choose a smaller image, for example a phone photo at medium size.",
                code="file_too_large", params={"status": 413})
        try:
            decoded = decode(upload.read(), max_bytes=settings.MAX_UPLOAD_BYTES,
                             max_pixels=settings.MAX_IMAGE_PIXELS)
            gate(decoded.image, self.kind, decoded.rectified_page())
        except ImageRejected as exc:
            message = exc.message
            if exc.code == "not_an_image":  # most often a PDF or a document: say what is read instead
                message += (f" It reads {image_format_words()} images: export or save a PDF or a document as one "
                            "of those, or photograph the page.")
            raise forms.ValidationError(message, code=exc.code, params={"status": exc.status}) from exc
        return decoded


class SchemaNumberField(forms.Field):
    """A number typed as text and read by the schema's parser.

    A text input, not `type=number`: Chromium's number input drops a comma it takes for
    a thousands separator, so "0,5" reached the server as "05". Phones still get a
    number pad through `inputmode`.
    """

    def __init__(self, *, number: NumberField, **kwargs: Any):
        self.number = number
        # Number pads on phones lack a minus key; a field that can be negative needs the full keyboard.
        mode = ("numeric" if number.integer else "decimal") if number.minimum >= 0 else "text"
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": mode, "autocomplete": "off",
                                                           "spellcheck": "false"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            return self.number.parse(str(value or ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


def _form_field(field) -> forms.Field:
    label = getattr(field, "question", "") or field.label
    if getattr(field, "unit", "") and not getattr(field, "units", ()):  # a unit to choose is said beside the box
        label = f"{label} ({field.unit})"
    if isinstance(field, NumberField):
        # A dropdown offers "Unknown" itself; only a blank box needs saying that blank means unknown.
        help_text = f"{field.help} {'' if field.required else 'Leave blank if unknown.'}".strip()
        return SchemaNumberField(number=field, label=label, required=field.required, help_text=help_text)
    if isinstance(field, ChoiceField):
        choices = [(c.value, c.label) for c in field.choices]
        choices = ([("", "Choose…")] if field.required else [UNKNOWN]) + choices
        return forms.ChoiceField(label=label, required=field.required, choices=choices, help_text=field.help)
    if isinstance(field, BooleanField):
        return forms.TypedChoiceField(label=label, required=field.required, help_text=field.help,
                                      choices=[UNKNOWN, ("yes", "Yes"), ("no", "No")],
                                      coerce=lambda v: v == "yes", empty_value=None)
    raise TypeError(f"no form field for {type(field).__name__}")


def _unit_field(field: NumberField) -> forms.ChoiceField:
    """The unit chosen beside a number that may be entered in more than one; the model's by default."""
    return forms.ChoiceField(label=f"{field.label} unit", choices=[(u, u) for u in field.unit_names],
                             initial=field.unit, required=False)


# Capitalised words that name a place or a slot, not a person: "Ward Seven", "Clinic Room".
PLACE_WORDS = frozenset({"bay", "bed", "case", "clinic", "cubicle", "east", "list", "morning", "afternoon", "north",
                         "patient", "room", "side", "slot", "south", "theatre", "unit", "ward", "west", "wing"})
# Two capitalised words side by side may be a person's name ("John Smith", "Anna Müller", "J. Smith").
_NAME = re.compile(r"\b([^\W\d_](?:\.|[^\W\d_]*(?:['-][^\W\d_]+)*))\s+([^\W\d_]+(?:['-][^\W\d_]+)*)")


def _looks_like_a_name(text: str) -> bool:
    for match in _NAME.finditer(text):
        first, last = match.groups()
        if (first[0].isupper() and last[0].isupper() and len(last) > 1 and any(c.islower() for c in last)
                and not {first.rstrip(".").lower(), last.lower()} & PLACE_WORDS):
            return True
    return False


# What makes a case reference look like it identifies a patient: a date (of birth), a long
# run of digits (a record, insurance or phone number), the words that introduce one, or two
# capitalised words that may be a name (a place such as "Ward Seven" is let through).
IDENTIFIER_SIGNS = (
    (re.compile(r"\b\d{1,4}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{2,4}\b"), "a date"),
    (re.compile(r"(?:\d[\s-]?){6,}"), "a long number"),
    (re.compile(r"\b(?:DOB|D\.O\.B|MRN|NHS|SSN|born|birth|record no|hospital no)\b", re.I), "words such as DOB or MRN"),
)


def identifier_signs(text: str) -> list[str]:
    """Why `text` may identify a patient, in words; empty when nothing suggests it."""
    signs = [words for pattern, words in IDENTIFIER_SIGNS if pattern.search(text)]
    return signs + ["what looks like a name"] if _looks_like_a_name(text) else signs


class PredictionForm(forms.Form):
    """What every prediction page asks besides the model's inputs: an optional case reference.

    A reference that looks like a patient identifier is held back with a warning until the
    clinician edits it or confirms it identifies no one (`keep_reference`, shown only then).
    """

    case_reference = forms.CharField(
        required=False, max_length=REFERENCE_MAX_LENGTH, label="Case reference (optional)",
        help_text="Your own note to find this result again, such as a bed or clinic slot. "
                  "Never a patient's name, date of birth or record number.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}))
    keep_reference = forms.BooleanField(required=False, label="Keep this reference: it does not identify a patient")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not (self.is_bound and identifier_signs(str(self.data.get("case_reference", "")))):
            del self.fields["keep_reference"]
        for field in self.fields.values():
            if isinstance(field, ScanField):  # the browser checks the size before uploading
                field.widget.attrs["data-max-bytes"] = str(settings.MAX_UPLOAD_BYTES)

    def clean_case_reference(self) -> str:
        reference = self.cleaned_data.get("case_reference", "").strip()
        signs = identifier_signs(reference)
        if signs and not self.data.get("keep_reference"):
            raise forms.ValidationError(
                f"This may identify a patient: it contains {' and '.join(signs)}. Use your own reference, such as "
                "a bed or clinic slot, or tick the box below if it identifies no one.", code="identifier")
        return reference

    @property
    def reference(self) -> str:
        return self.cleaned_data.get("case_reference", "")

    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField | None]]:
        """The fields as the page lays them out: each with the unit chosen beside it, if it has one."""
        units = {name: self[name] for name in self.unit_fields}
        return [(field, units.get(f"{field.name}_unit")) for field in self if field.name not in units]

    @property
    def unit_fields(self) -> tuple[str, ...]:
        return ()

    def prediction_requests(self) -> list[TabularRequest | ImageRequest]:
        raise NotImplementedError

    def image_field_for(self, model: str) -> str:
        """The field whose upload went to this image model (where its refusal is shown)."""
        raise NotImplementedError


class TabularForm(PredictionForm):
    schema: TabularSchema
    image_field: str | None = None
    image_model: str | None = None  # the model the optional image goes to

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for field in self.schema.fields:
            self.fields[field.name] = _form_field(field)
            if isinstance(field, NumberField) and field.units:
                self.fields[field.unit_field] = _unit_field(field)
        if self.image_field:  # keep the optional image last on the page
            self.fields[self.image_field] = self.fields.pop(self.image_field)

    @property
    def unit_fields(self) -> tuple[str, ...]:
        return tuple(f.unit_field for f in self.schema.fields if isinstance(f, NumberField) and f.units)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        values = {name: (None if cleaned.get(name) in ("", None) else cleaned.get(name))
                  for name in (*self.schema.by_name, *self.unit_fields)}
        try:
            self.values = self.schema.validate(values)
        except InputInvalid as exc:
            for name, messages in exc.errors.items():
                if name not in self.errors:  # a field that did not parse already says why
                    self.add_error(name, messages)
        # An optional image its model refuses (not its kind, ungradable) holds back no estimate on an
        # otherwise valid form, which never uses it: the result says why it was not read
        # (services.ImageRefused). A file over the size limit stays a field error, to send again smaller.
        self.image_refusal = ""
        problems = self._errors.get(self.image_field).as_data() if self.image_field in self._errors else []
        if set(self._errors) == {self.image_field} and not any((e.params or {}).get("status") == 413 for e in problems):
            self.image_refusal = " ".join(self._errors.pop(self.image_field))
        return cleaned

    def prediction_requests(self) -> list[TabularRequest | ImageRequest | ImageRefused]:
        requests: list[TabularRequest | ImageRequest | ImageRefused] = [TabularRequest(self.schema.model, self.values)]
        image = self.cleaned_data.get(self.image_field) if self.image_field else None
        if image is not None and self.image_model:
            requests.append(ImageRequest(self.image_model, image))
        elif self.image_refusal and self.image_model:
            requests.append(ImageRefused(self.image_model, self.image_refusal))
        return requests

    def image_field_for(self, model: str) -> str:
        return self.image_field


class ImageForm(PredictionForm):
    model: str

    def prediction_requests(self) -> list[TabularRequest | ImageRequest]:
        return [ImageRequest(self.model, self.cleaned_data["image"])]

    def image_field_for(self, model: str) -> str:
        return "image"


def _tabular_form(spec: ModelSpec) -> type[TabularForm]:
    """A form's page from its schema, with the optional image of the model the catalogue pairs it with."""
    attrs: dict[str, Any] = {"__module__": __name__, "schema": TABULAR_SCHEMAS[spec.name]}
    if spec.image_with:
        image = SPECS[spec.image_with]
        name = f"{image.name}_image"
        attrs.update({"image_field": name, "image_model": image.name,
                      name: ScanField(kind=image.input, required=False, label=f"{image.upload} (optional)",
                                      help_text=image.upload_adds)})
    return type(TabularForm)(f"{spec.name.title()}Form", (TabularForm,), attrs)


def _image_form(spec: ModelSpec) -> type[ImageForm]:
    return type(ImageForm)(f"{spec.name.title()}Form", (ImageForm,), {
        "__module__": __name__, "model": spec.name,
        "image": ScanField(kind=spec.input, label=spec.upload, help_text=spec.upload_help)})


FORMS = {spec.name: _tabular_form(spec) if spec.tabular else _image_form(spec) for spec in MODEL_SPECS}


class HistoryFilterForm(forms.Form):
    """The history page's filters. Filters that do not validate list nothing (the view shows the
    error instead of an unfiltered history that would read as filtered)."""

    model = forms.ChoiceField(required=False, choices=[("", "All models"), *CHOICES], label="Model")
    since = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(required=False, label="To",
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    reference = forms.CharField(required=False, max_length=REFERENCE_MAX_LENGTH, label="Case reference contains")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def criteria(self) -> dict[str, Any]:
        """Keyword arguments for selectors.history from the fields that are valid."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {"model": data.get("model") or None, "since": data.get("since"), "until": data.get("until"),
                "reference": data.get("reference", "").strip()}

    def is_filtering(self) -> bool:
        return any(self.criteria().values())
