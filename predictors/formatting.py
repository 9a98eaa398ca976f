"""How every page, message and API answer writes a number, a size or a label, and the disclaimer.

Plain Python (training's decision words use `percent` too), so a figure reads the same on a
result, a model card, an error message and the API.
"""
from __future__ import annotations

from .serving.memory import MB

# Written once: the footer of every page shows it, every API answer carries it. It must stay
# true of the served cards (tests/page_text.py checks it against their data fields).
DISCLAIMER_HEAD = "Demonstration only: not a medical device."
DISCLAIMER_BODY = ("Do not use these models for diagnosis, treatment or triage. The image models learnt from real "
                   "photographs from a single public source each, so they may fail on other cameras, machines and "
                   "patients; each model card gives its data, its figures and where it fails.")
DISCLAIMER = f"{DISCLAIMER_HEAD} {DISCLAIMER_BODY}"


def percent(probability: float, ceiling: float | None = None) -> str:
    """A probability as a clinician reads it: whole percent, never "100%" or "0%".

    No model here is right every time, so a rounded certainty would overstate it;
    beyond 99% and below 1% the page says so instead ("> 99%", "< 1%"). A `ceiling` is the highest
    probability the model's card bears out (card_pages.evidence.ceiling): above it, "> ceiling".
    """
    if ceiling is not None and ceiling < 0.99 and probability > ceiling:
        return f"> {max(1, int(ceiling * 100 + 0.5))}%"
    if probability > 0.99:
        return "> 99%"
    if probability < 0.01:
        return "< 1%"
    return f"{min(99, max(1, int(probability * 100 + 0.5)))}%"


def file_size(size: int) -> str:
    """A file's size as the forms and the request-size refusal say it: kB below a megabyte, MB of
    1,048,576 bytes above ("37 kB", "12.6 MB"). That is the unit of the upload limit:
    MAX_UPLOAD_BYTES is 10 * 1024 * 1024 bytes, exactly "10 MB" here. static/healthoracle.js says
    sizes the same way. The image decoder's and the ASGI bridge's own refusals
    (images/decode.py, server/bridge.py) divide by 10^6 instead, which gives the same limit as
    "10 MB" too but a file of 10,400,000 bytes as "10.4 MB" where this says "9.9 MB"."""
    if size < MB:
        return f"{max(1, -(-size // 1024))} kB"
    return f"{size / MB:.1f}".removesuffix(".0") + " MB"


def in_sentence(label: str) -> str:
    """A field's label inside a sentence: "Serum cholesterol" -> "serum cholesterol", while "BMI",
    "ECG finding" and "mg/dL" keep their capitals."""
    first = label.split(" ", 1)[0]
    if len(first) > 1 and any(c.isupper() for c in first[1:]):
        return label
    return label[:1].lower() + label[1:]
