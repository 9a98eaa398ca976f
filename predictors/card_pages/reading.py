"""Reading a card defensively: cards are written by training and grow new keys over time, so a
missing key, or a value of an unexpected shape, reads as nothing rather than failing the page."""
from __future__ import annotations

from typing import Any, Mapping


def point_and_interval(value: Any) -> tuple[float | None, tuple[float, float] | None]:
    """A metric's value and 95% interval: a bare number, or the `{"value", "ci95": [low, high]}` that
    training writes (training/evaluation.py)."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, (int, float)):
        return float(value), None
    if not isinstance(value, Mapping) or not is_number(value.get("value")):
        return None, None
    bounds = value.get("ci95")
    interval = None
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(is_number(b) for b in bounds):
        interval = (float(bounds[0]), float(bounds[1]))
    return float(value["value"]), interval


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str:
    if value is None or isinstance(value, (Mapping, list)):
        return ""
    return str(value)


def as_texts(value: Any) -> list[str]:
    """Free text a card gives as a string, a list of strings, or a list or dict of entries."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        value = [f"{humanise(str(k))}: {v}" if isinstance(v, str) else v for k, v in value.items()]
    found = []
    for item in as_list(value):
        if isinstance(item, Mapping):
            item = next((item[k] for k in ("text", "description", "summary", "name") if isinstance(item.get(k), str)),
                        "; ".join(f"{k}: {v}" for k, v in item.items() if isinstance(v, (str, int, float))))
        if isinstance(item, str) and item.strip():
            found.append(item)
    return found


def humanise(key: str) -> str:
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
