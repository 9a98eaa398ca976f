"""Inputs of the heart-disease model: the 13 Cleveland attributes in a clinician's words.

Codes are those of the UCI heart-disease data (cp 1-4, restecg 0-2, slope 1-3,
thal 3/6/7), which the training pipeline maps the data's text onto through this
module, so the form, the API and the model agree by construction.
"""
from .fields import BooleanField, Choice, ChoiceField, FactorContext, NumberField, TabularSchema

SCHEMA = TabularSchema(
    model="heart",
    positive_label="coronary artery disease (>50% narrowing)",
    negative_label="no coronary artery disease",
    fields=(
        NumberField("age", "Age", "years", 18, 110, integer=True),
        ChoiceField("sex", "Sex", (Choice("male", "Male", 1), Choice("female", "Female", 0))),
        ChoiceField("chest_pain_type", "Chest pain type", (
            Choice("typical_angina", "Typical angina", 1),
            Choice("atypical_angina", "Atypical angina", 2),
            Choice("non_anginal", "Non-anginal pain", 3),
            Choice("asymptomatic", "Asymptomatic", 4),
        )),
        NumberField("resting_bp", "Resting blood pressure", "mm Hg", 60, 260, required=False,
                    help="Systolic, on admission."),
        NumberField("cholesterol", "Serum cholesterol", "mg/dL", 80, 700, required=False),
        BooleanField("fasting_blood_sugar_gt_120", "Fasting blood sugar > 120 mg/dL", required=False),
        ChoiceField("resting_ecg", "Resting ECG", (
            Choice("normal", "Normal", 0),
            Choice("st_t_abnormality", "ST-T wave abnormality", 1),
            Choice("lv_hypertrophy", "Left ventricular hypertrophy", 2),
        ), required=False),
        NumberField("max_heart_rate", "Maximum heart rate achieved", "bpm", 50, 230, required=False),
        BooleanField("exercise_angina", "Exercise-induced angina", required=False),
        NumberField("st_depression", "ST depression induced by exercise", "mm", -3, 7, required=False,
                    help="Relative to rest (oldpeak)."),
        ChoiceField("st_slope", "Slope of peak exercise ST segment", (
            Choice("upsloping", "Upsloping", 1),
            Choice("flat", "Flat", 2),
            Choice("downsloping", "Downsloping", 3),
        ), required=False),
        NumberField("major_vessels", "Vessels narrowed on angiography", "", 0, 3, required=False, integer=True,
                    question="Vessels with narrowing on angiography (0–3), if an angiogram was done",
                    help="Major coronary vessels (0 to 3) seen narrowed on fluoroscopy during the angiogram. "
                         "This is a result of the test the model predicts: leave it blank before angiography."),
        ChoiceField("thal", "Thallium stress test", (
            Choice("normal", "Normal", 3),
            Choice("fixed_defect", "Fixed defect", 6),
            Choice("reversible_defect", "Reversible defect", 7),
        ), required=False),
    ),
    factor_context=(
        FactorContext("chest_pain_type", ("typical_angina", "atypical_angina", "non_anginal"), "lowered",
                      "Why chest pain can lower this estimate: the Cleveland patients were all referred for "
                      "angiography, and among them those without chest pain (asymptomatic) had more coronary "
                      "disease than those with anginal or other pain. The factors are what the model learnt from "
                      "that group, not causes."),
    ),
)
