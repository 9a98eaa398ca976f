"""The four models, declared once: what each is called, which runtime serves it, what it takes.

Everything that lists the models reads this tuple: the registry, the history's model
choices, the URL converters, the API and its OpenAPI document, the forms (each with its
optional image and its gate), the training and import commands, the site's navigation.
What a model can do or must say (grade for referral, take an optional image, the youngest
patients it learnt from) is a field here, so no code outside this module and
predictors.inputs tests a model by its name. Plain Python, so training imports it without
Django.
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
    # A graded model's answer is its screening question's: these words head its result, by the
    # referral call ("referable", "not_referable"); the grade is read beneath them.
    answers: tuple[tuple[str, str], ...] = ()
    # What each answer calls for next, in clinical words and never stronger than the evidence, said
    # with every result: by label (a graded model's by referral call), by a form's risk band, and
    # "uncertain" for an image the model does not answer.
    next_steps: tuple[tuple[str, str], ...] = ()
    # A form's optional image: the image model its upload goes to, answered in the same result.
    image_with: str = ""
    # A form's own field for a finding its optional image shows too, read differently: the estimate
    # takes that field only as typed, never from the image, and its result says so beside the image's.
    image_not_read_into: str = ""
    # The youngest patients in the training data: a result for anyone younger says so.
    min_age: int | None = None
    # A form whose attached image can answer its question already: (warning, its short form), said
    # when that image's graded answer shows any disease; "{label}" is the grade it reads as.
    shown_on_image: tuple[str, str] = ()
    # An image model's upload as a form asks for it: its label, the help under it on the model's
    # own page, and what it adds where a form takes it as an optional image.
    upload: str = ""
    upload_help: str = ""
    upload_adds: str = ""
    # Answers a clinic looks for again in its lists, flagged there in words: by answer key (a graded
    # model's referral call, or a finding's label) -> the flag's words.
    flags: tuple[tuple[str, str], ...] = ()

    def flag(self, key: str) -> str:
        return dict(self.flags).get(key, "")
    # An image model's answers (a finding, or a graded model's most likely grade) that call for action
    # now: they lead a page they share with a form's estimate, and a graded model's takes that grade's
    # next step over its referral call's.
    urgent: tuple[str, ...] = ()
    # An image model's negative answer (a finding, or a graded model's call): its result says, from the
    # card's test figures, how often the model gave it where it was wrong.
    negative: str = ""
    # One case of an image model's test set, in words ("eye", "ECG"), for the figures a result quotes.
    case: str = ""

    def answer_words(self, key: str) -> str:
        return dict(self.answers)[key]

    def next_step(self, key: str) -> str:
        return dict(self.next_steps).get(key, "")

    @property
    def next_step_rows(self) -> list[tuple[str, str]]:
        """The next steps under the answers they follow, as the model card lists them."""
        names = {**dict(self.answers), **{band: f"{band.capitalize()} risk" for band in ("low", "moderate", "high")},
                 "uncertain": "Uncertain or too close to call",
                 **({label: f"Most likely grade {label}" for label in self.labels} if self.answers else {})}
        return [(names.get(key, key), text) for key, text in self.next_steps]

    @property
    def tabular(self) -> bool:
        return self.input == "tabular"


# An answer at or above this probability is a confident one: "confidently wrong" (a confident answer
# that is wrong) is what the cards count and the benchmarks bound, with this one value.
CONFIDENT = 0.8
# Said of every image a model does not answer: uncertain, or outside what it was validated on.
HUMAN_READ = "Have the image read by a clinician; do not act on the model's answer."
PIMA_MIN_AGE = 21  # the youngest patients in the diabetes data
MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("diabetes", "Diabetes risk", "Diabetes", "xgboost_tabular",
              "Eight routine measurements (glucose, BMI, age…); six may be unknown.", "tabular",
              population=f"It learnt from Pima Indian women aged {PIMA_MIN_AGE} or older who were not known to "
                         "have diabetes: for men, younger people and other populations its estimate is untested.",
              image_with="retina", min_age=PIMA_MIN_AGE,
              shown_on_image=("The fundus photo reads as {label}. Diabetic retinopathy occurs in people who already "
                              "have diabetes, and this risk estimate is for people not known to have it: test for "
                              "diabetes now (for example HbA1c or fasting glucose) rather than reading a five-year "
                              "risk.", "retinopathy on the photo: test for diabetes now"),
              next_steps=(
                  ("high", "An estimate, not a diagnosis: test for diabetes (HbA1c or fasting plasma glucose) and "
                           "discuss how to lower the risk."),
                  ("moderate", "An estimate, not a diagnosis: consider testing for diabetes (HbA1c or fasting "
                               "plasma glucose), above all with other risk factors."),
                  ("low", "A low estimate does not rule diabetes out: screen as your guideline says for this "
                          "patient's age and risk factors."))),
    ModelSpec("heart", "Heart disease risk", "Heart", "xgboost_tabular",
              "Thirteen cardiology findings (chest pain type, ECG, stress test…); most may be unknown.", "tabular",
              population="It learnt from Cleveland Clinic patients already referred for coronary angiography, "
                         "46% of whom (139 of 304) had coronary artery disease: for people not referred, such as "
                         "an unselected clinic or screening population, its estimate is likely to be too high.",
              image_with="ecg", image_not_read_into="resting_ecg",
              next_steps=(
                  ("high", "An estimate, not a diagnosis: assess for coronary disease as your local pathway says "
                           "(a cardiology referral or further testing)."),
                  ("moderate", "An estimate, not a diagnosis: weigh it with the history and examination; it "
                               "neither confirms nor rules out coronary disease."),
                  ("low", "A low estimate does not rule out coronary disease, nor an acute coronary syndrome: "
                          "assess symptoms as you would without it."))),
    ModelSpec("retina", "Diabetic retinopathy grade", "Retina", "onnx_image",
              "A colour retinal fundus photograph.", "fundus",
              upload="Retinal fundus photo",
              upload_help=f"A colour photo of the back of the eye; {image_format_words()}.",
              upload_adds="Adds a diabetic-retinopathy grade to the same result.",
              labels=("No DR", "Mild NPDR", "Moderate NPDR", "Severe NPDR", "Proliferative DR"),
              referable_grade=2, flags=(("referable", "referable retinopathy"),), urgent=("Proliferative DR",),
              negative="not_referable", case="eye",
              answers=(("referable", "Referable diabetic retinopathy"),
                       ("not_referable", "No referable diabetic retinopathy")),
              next_steps=(
                  ("referable", "Refer to an ophthalmologist within the interval your screening programme sets "
                                "for referable retinopathy; the specialist grades the eye, not this model."),
                  ("not_referable", "No referral on this photo alone: keep to the usual screening interval, and "
                                    "examine or refer anyway if the patient has eye symptoms."),
                  ("Proliferative DR", "Proliferative retinopathy is the most likely grade: refer urgently to an "
                                       "ophthalmologist, as your screening programme sets for proliferative "
                                       "(sight-threatening) retinopathy; the specialist grades the eye, not this "
                                       "model."),
                  ("uncertain", "Have the photo graded by a trained grader or an ophthalmologist before "
                                "deciding on referral."))),
    ModelSpec("ecg", "ECG finding", "ECG", "onnx_image",
              "A scan or photo of a 12-lead ECG printout.", "ecg",
              upload="12-lead ECG printout", upload_help="A scan, screenshot or phone photo of the printout.",
              upload_adds="Adds an ECG reading to the same result.",
              urgent=("Myocardial Infarction",), negative="Normal", case="ECG",
              labels=("Normal", "Abnormal heartbeat", "Myocardial Infarction", "History of MI"),
              flags=(("Myocardial Infarction", "MI"), ("History of MI", "MI (history)")),
              next_steps=(
                  ("Normal", "A normal read of the printout does not rule out an acute coronary syndrome or an "
                             "intermittent arrhythmia: if the symptoms suggest one, follow your chest-pain pathway "
                             "(repeat ECGs, troponin) whatever this says."),
                  ("Abnormal heartbeat", "Have the ECG read by a clinician to name the rhythm, and assess the "
                                         "patient before acting on it."),
                  ("Myocardial Infarction", "Have the ECG read by a clinician now; if the patient has symptoms, "
                                            "manage as a possible acute coronary syndrome by your local pathway "
                                            "without waiting for this model."),
                  ("History of MI", "Have the ECG read by a clinician and compare it with earlier ECGs and the "
                                    "history."),
                  ("uncertain", HUMAN_READ))),
)
SPECS = {spec.name: spec for spec in MODEL_SPECS}
NAMES = tuple(SPECS)
TABULAR = tuple(spec.name for spec in MODEL_SPECS if spec.tabular)
IMAGE = tuple(spec.name for spec in MODEL_SPECS if not spec.tabular)
CHOICES = [(spec.name, spec.title) for spec in MODEL_SPECS]
