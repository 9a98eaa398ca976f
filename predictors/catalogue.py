"""The four models, declared once: what each is called, which runtime serves it, what it takes.

Everything that lists the models reads this tuple: the registry, the history's model
choices, the URL converters, the API and its OpenAPI document, the forms' image gates,
the training and import commands, the site's navigation. What a model can do (grade for
referral, say) is a field here, so no code tests a model by its name. Plain Python, so
training imports it without Django.
"""
from __future__ import annotations

from dataclasses import dataclass


# The image formats the site reads (Pillow's names) and the media type each travels as:
# what a browser, a scanner or a phone produces. Anything else is refused before Pillow's
# decoder for it runs (predictors.images.decode); the API document and the upload help
# are written from this table too.
IMAGE_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                 "BMP": "image/bmp", "TIFF": "image/tiff", "GIF": "image/gif"}


def image_format_words() -> str:
    """The formats as a person names them ("JPEG, PNG, … or GIF"); MPO is a phone's JPEG."""
    names = [{"WEBP": "WebP"}.get(name, name) for name in IMAGE_FORMATS if name != "MPO"]
    return f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    nav: str  # its link in the site's navigation
    kind: str  # which runtime serves it (predictors.serving.runtimes.RUNTIME_CLASSES)
    needs: str  # one line for the dashboard and the API document
    input: str  # "tabular" (schema in predictors.inputs), or the image gate: "fundus" / "ecg"
    population: str = ""  # who the training data were, in a sentence said with every result and on the card
    # Image models: the classes in the order of the graph's outputs. Training writes them to
    # the card, and the site reads them from the card it serves.
    labels: tuple[str, ...] = ()
    # A graded screening model: the first label (by index) that calls for referral; None otherwise.
    referable_grade: int | None = None

    @property
    def tabular(self) -> bool:
        return self.input == "tabular"


MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("diabetes", "Diabetes risk", "Diabetes", "xgboost_tabular",
              "Eight routine measurements (glucose, BMI, age…); five may be unknown.", "tabular",
              population="It learnt from Pima Indian women aged 21 or older who were not known to have "
                         "diabetes: for men, younger people and other populations its estimate is untested."),
    ModelSpec("heart", "Heart disease risk", "Heart", "xgboost_tabular",
              "Thirteen cardiology findings (chest pain type, ECG, stress test…); most may be unknown.", "tabular"),
    ModelSpec("retina", "Diabetic retinopathy grade", "Retina", "onnx_image",
              "A colour retinal fundus photograph.", "fundus",
              labels=("No DR", "Mild NPDR", "Moderate NPDR", "Severe NPDR", "Proliferative DR"),
              referable_grade=2),
    ModelSpec("ecg", "ECG finding", "ECG", "onnx_image",
              "A scan or photo of a 12-lead ECG printout.", "ecg",
              labels=("Normal", "Abnormal heartbeat", "Myocardial Infarction", "History of MI")),
)
SPECS = {spec.name: spec for spec in MODEL_SPECS}
NAMES = tuple(SPECS)
TABULAR = tuple(spec.name for spec in MODEL_SPECS if spec.tabular)
IMAGE = tuple(spec.name for spec in MODEL_SPECS if not spec.tabular)
CHOICES = [(spec.name, spec.title) for spec in MODEL_SPECS]
