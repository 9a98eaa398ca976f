"""Does a page say anything its models' own cards contradict?

The cards are the record of what each model learnt from (data.source, data.synthetic,
image counts); footers, result pages and card pages are prose written elsewhere. Each
sentence a page shows is held to the cards' data fields: a page that says "synthetic"
of models whose cards say real photographs, names a data source no card names, or
gives an image count no card holds, contradicts them.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any, Iterable, Mapping

# Data sets a sentence might credit; any named must be one a card's data fields name.
KNOWN_SOURCES = ("IDRiD", "Khan", "Pima", "Cleveland", "APTOS", "EyePACS", "Messidor", "PTB-XL", "MIT-BIH",
                 "Kaggle", "CheXpert", "MIMIC")
_IMAGE_COUNT = re.compile(r"(\d[\d,]*)\s+(?:real\s+|distinct\s+)?(?:training\s+|test\s+)?(?:images|photographs|photos)\b",
                          re.I)
_REAL = re.compile(r"\breal\s+(?:patients'?\s+)?(?:photographs|photos|images)\b", re.I)


def page_text(markup: str) -> str:
    """The visible words of an HTML page (scripts and styles dropped), one line per block."""
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<(?:br|/p|/li|/dd|/dt|/h\d|/tr|/div|/section|/footer|/caption)\b[^>]*>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def _numbers(value: Any) -> Iterable[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        yield from _numbers_of_list(value)


def _numbers_of_list(values: list) -> Iterable[int]:
    for item in values:
        yield from _numbers(item)
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        yield sum(values)


def _class_totals(card: Mapping[str, Any]) -> Iterable[int]:
    """A class's images over the splits that trained it (fitting and validation: a data set's
    own "training split"), and over all splits."""
    splits = (card.get("data") or {}).get("class_counts")
    if not isinstance(splits, Mapping):
        return
    columns = [v for v in splits.values() if isinstance(v, list)]
    training = [v for k, v in splits.items() if k != "test" and isinstance(v, list)]
    for group in (training, columns):
        if group and len({len(v) for v in group}) == 1:
            yield from (sum(values) for values in zip(*group))


def contradictions(text: str, cards: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Sentences of `text` that the cards' data fields contradict, each with the reason."""
    image_cards = {name: card for name, card in cards.items() if card.get("kind") == "onnx_image"}
    synthetic = {name: (card.get("data") or {}).get("synthetic") for name, card in image_cards.items()}
    sources = json.dumps([card.get("data") for card in cards.values()])
    counts = {n for card in cards.values() for n in (*_numbers(card.get("data")), *_numbers(card.get("metrics")),
                                                     *_class_totals(card))}
    found = []
    for sentence in sentences(text):
        lower = sentence.lower()
        if "synthetic" in lower and synthetic and all(v is False for v in synthetic.values()):
            found.append(f"{sentence!r}: every image card says data.synthetic is false")
        if _REAL.search(sentence) and any(v is True for v in synthetic.values()):
            found.append(f"{sentence!r}: a card says its images are synthetic")
        for source in KNOWN_SOURCES:
            if re.search(rf"\b{re.escape(source)}\b", sentence) and source not in sources:
                found.append(f"{sentence!r}: no card names {source} as its source")
        for match in _IMAGE_COUNT.finditer(sentence):
            number = int(match.group(1).replace(",", ""))
            if number not in counts:
                found.append(f"{sentence!r}: no card counts {number} images")
    return found
