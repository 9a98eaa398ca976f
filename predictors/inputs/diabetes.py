"""Inputs of the diabetes model: the eight Pima Indians measurements.

The five clinical measurements and the pedigree function may be unknown; the model was
trained with the data set's zeros treated as missing, so an unknown measurement is NaN,
never 0. The pedigree function was never missing in the data (see its field).
"""
from decimal import Decimal

from .fields import DiagnosticThreshold, NumberField, TabularSchema, Unit

# mg/dL of glucose in one mmol/L (its molar mass, 180.16 g/mol, over 10).
GLUCOSE_MG_PER_DL_PER_MMOL_PER_L = Decimal("18.016")
# The Pima data's median diabetes pedigree function (768 women, none without one). Its trees never
# saw the score missing, so they send a NaN the way of the highest scores (an unknown score raised
# an estimate as much as 2.0 did); an unknown score is given the median instead, and is still an
# unknown finding: never named as a factor, and counted out of "based on N of 8 findings".
PIMA_MEDIAN_PEDIGREE = 0.3725

SCHEMA = TabularSchema(
    model="diabetes",
    positive_label="diabetes within five years",
    negative_label="no diabetes",
    fields=(
        NumberField("pregnancies", "Pregnancies", "", 0, 20, integer=True,
                    help="Number of times pregnant. The model learnt from women only."),
        NumberField("glucose", "Glucose", "mg/dL", 40, 400, required=False,
                    help="Plasma glucose 2 hours into an oral glucose tolerance test.",
                    # One decimal in mg/dL keeps 11.1 mmol/L, the ADA's own equivalent of 200 mg/dL, at 200.0
                    # (199.98 unrounded), so the diagnostic threshold reads the same in either unit.
                    units=(Unit("mmol/L", GLUCOSE_MG_PER_DL_PER_MMOL_PER_L, places=1),)),
        NumberField("blood_pressure", "Diastolic blood pressure", "mm Hg", 20, 150, required=False),
        NumberField("skin_thickness", "Triceps skinfold", "mm", 3, 100, required=False),
        NumberField("insulin", "Insulin", "µU/mL", 5, 1000, required=False,
                    help="2-hour serum insulin."),
        NumberField("bmi", "BMI", "kg/m²", 10, 80, required=False),
        NumberField("diabetes_pedigree", "Diabetes pedigree function", "", 0.05, 2.5, required=False,
                    unknown_as=PIMA_MEDIAN_PEDIGREE,
                    help="A family-history score from the Pima study, higher the more blood relatives had "
                         "diabetes, the closer and the younger they were (0.08 to 2.4 in the study). Left blank, "
                         f"the estimate takes the study's median score, {PIMA_MEDIAN_PEDIGREE:.2f}. Clinics do not "
                         "usually work it out."),
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
