"""HTML forms, generated from the input schemas, and the image upload field.

Field types parse text here; ranges and choices are checked by the schema, the same
code the JSON API uses, so a value is accepted or refused the same way on both.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings

from .inputs import TABULAR_SCHEMAS, InputInvalid
from .inputs.fields import BooleanField, ChoiceField, NumberField, TabularSchema
from .registry import MODEL_SPECS
from .services import ImageRequest, TabularRequest

if TYPE_CHECKING:
    from .imaging import DecodedImage

UNKNOWN = ("", "Unknown")
GATE = {spec.name: spec.input for spec in MODEL_SPECS}


class ScanField(forms.FileField):
    """An uploaded image, decoded within the size and pixel limits and gated by kind."""

    def __init__(self, *, kind: str, **kwargs: Any):
        self.kind = kind
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs={"accept": "image/*"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> "DecodedImage | None":
        from .imaging import ImageRejected, decode, gate  # Pillow + numpy: only when an image arrives

        upload = super().clean(data, initial)
        if not upload:
            return None
        if upload.size > settings.MAX_UPLOAD_BYTES:  # refuse before reading it into memory
            raise forms.ValidationError(
                f"The file is {upload.size / 1e6:.1f} MB; the limit is {settings.MAX_UPLOAD_BYTES / 1e6:.0f} MB.",
                code="file_too_large", params={"status": 413})
        try:
            decoded = decode(upload.read(), max_bytes=settings.MAX_UPLOAD_BYTES,
                             max_pixels=settings.MAX_IMAGE_PIXELS)
            gate(decoded.image, self.kind)
        except ImageRejected as exc:
            raise forms.ValidationError(exc.message, code=exc.code, params={"status": exc.status}) from exc
        return decoded


def _form_field(field) -> forms.Field:
    label = f"{field.label} ({field.unit})" if getattr(field, "unit", "") else field.label
    help_text = field.help + ("" if field.required else " Leave blank if unknown.")
    if isinstance(field, NumberField):
        attrs = {"min": f"{field.minimum:g}", "max": f"{field.maximum:g}", "step": field.step}
        cls = forms.IntegerField if field.integer else forms.FloatField
        return cls(label=label, required=field.required, help_text=help_text.strip(),
                   widget=forms.NumberInput(attrs=attrs))
    if isinstance(field, ChoiceField):
        choices = [(c.value, c.label) for c in field.choices]
        choices = ([("", "Choose…")] if field.required else [UNKNOWN]) + choices
        return forms.ChoiceField(label=label, required=field.required, choices=choices, help_text=help_text.strip())
    if isinstance(field, BooleanField):
        return forms.TypedChoiceField(label=label, required=field.required, help_text=help_text.strip(),
                                      choices=[UNKNOWN, ("yes", "Yes"), ("no", "No")],
                                      coerce=lambda v: v == "yes", empty_value=None)
    raise TypeError(f"no form field for {type(field).__name__}")


class TabularForm(forms.Form):
    schema: TabularSchema
    image_field: str | None = None
    image_model: str | None = None  # the model the optional image goes to

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for field in self.schema.fields:
            self.fields[field.name] = _form_field(field)
        if self.image_field:  # keep the optional image last on the page
            self.fields[self.image_field] = self.fields.pop(self.image_field)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        values = {name: (None if cleaned.get(name) in ("", None) else cleaned.get(name))
                  for name in self.schema.by_name}
        try:
            self.values = self.schema.validate(values)
        except InputInvalid as exc:
            for name, messages in exc.errors.items():
                if name not in self.errors:  # a field that did not parse already says why
                    self.add_error(name, messages)
        return cleaned

    def prediction_requests(self) -> list[TabularRequest | ImageRequest]:
        requests: list[TabularRequest | ImageRequest] = [TabularRequest(self.schema.model, self.values)]
        image = self.cleaned_data.get(self.image_field) if self.image_field else None
        if image is not None and self.image_model:
            requests.append(ImageRequest(self.image_model, image))
        return requests


class ImageForm(forms.Form):
    model: str

    def prediction_requests(self) -> list[TabularRequest | ImageRequest]:
        return [ImageRequest(self.model, self.cleaned_data["image"])]


class DiabetesForm(TabularForm):
    schema = TABULAR_SCHEMAS["diabetes"]
    image_field = "retina_image"
    image_model = "retina"
    retina_image = ScanField(kind=GATE["retina"], required=False, label="Retinal fundus photo (optional)",
                             help_text="Adds a diabetic-retinopathy grade to the same result.")


class HeartForm(TabularForm):
    schema = TABULAR_SCHEMAS["heart"]
    image_field = "ecg_image"
    image_model = "ecg"
    ecg_image = ScanField(kind=GATE["ecg"], required=False, label="12-lead ECG printout (optional)",
                          help_text="Adds an ECG reading to the same result.")


class RetinaForm(ImageForm):
    model = "retina"
    image = ScanField(kind=GATE["retina"], label="Retinal fundus photo",
                      help_text="A colour photo of the back of the eye; JPEG, PNG, BMP, WebP or TIFF.")


class EcgForm(ImageForm):
    model = "ecg"
    image = ScanField(kind=GATE["ecg"], label="12-lead ECG printout",
                      help_text="A scan, screenshot or phone photo of the printout.")


FORMS = {"diabetes": DiabetesForm, "heart": HeartForm, "retina": RetinaForm, "ecg": EcgForm}
