"""Inputs of the diabetes model: the eight Pima Indians measurements.

The five clinical measurements may be unknown; the model was trained with the data
set's zeros treated as missing, so an unknown value is NaN, never 0.
"""
from .fields import DiagnosticThreshold, NumberField, TabularSchema

SCHEMA = TabularSchema(
    model="diabetes",
    positive_label="diabetes within five years",
    negative_label="no diabetes",
    fields=(
        NumberField("pregnancies", "Pregnancies", "", 0, 20, integer=True,
                    help="Number of times pregnant. The model learnt from women only."),
        NumberField("glucose", "Glucose", "mg/dL", 40, 400, required=False,
                    help="Plasma glucose 2 hours into an oral glucose tolerance test."),
        NumberField("blood_pressure", "Diastolic blood pressure", "mm Hg", 20, 150, required=False),
        NumberField("skin_thickness", "Triceps skinfold", "mm", 3, 100, required=False),
        NumberField("insulin", "Insulin", "µU/mL", 5, 1000, required=False,
                    help="2-hour serum insulin."),
        NumberField("bmi", "BMI", "kg/m²", 10, 80, required=False),
        NumberField("diabetes_pedigree", "Diabetes pedigree function", "", 0.05, 2.5,
                    help="Family-history score from the Pima study (typically 0.08 to 2.4)."),
        NumberField("age", "Age", "years", 18, 110, integer=True),
    ),
    # The form's glucose is the Pima study's: 2 hours into an oral glucose tolerance test. A fasting
    # glucose (ADA: 126 mg/dL or more) is not one of its fields, so it is not judged here.
    diagnostic=(
        DiagnosticThreshold(
            "glucose", 200, "2-hour plasma glucose of 200 mg/dL (11.1 mmol/L) or more during a 75 g oral glucose "
            "tolerance test", "American Diabetes Association, Standards of Care in Diabetes, section 2 "
            "(Diagnosis and Classification of Diabetes)",
            "This already meets a diagnostic criterion for diabetes, so a risk of developing it does not apply: "
            "the model is for people not known to have diabetes.",
            "Confirm the diagnosis as the ADA criteria ask (a second abnormal test, such as HbA1c or fasting "
            "plasma glucose, unless hyperglycaemia is unequivocal) and manage as diabetes."),
    ),
)
