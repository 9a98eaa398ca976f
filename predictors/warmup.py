"""Load the models named in WARM_MODELS in a background thread after a worker starts."""
from __future__ import annotations

import logging
import threading

from django.conf import settings

from .registry import MODEL_SPECS, ModelUnavailable, get_loader

log = logging.getLogger(__name__)


def warm_model_names(requested: list[str]) -> list[str]:
    names = [s.name for s in MODEL_SPECS]
    if any(item.lower() == "all" for item in requested):
        return names
    unknown = [item for item in requested if item not in names]
    if unknown:
        log.warning("WARM_MODELS names unknown model(s) %s; known: %s", unknown, names)
    return [item for item in requested if item in names]


def warm(names: list[str]) -> dict[str, str | None]:
    """Load each model; returns name -> None on success or the reason it failed."""
    loader = get_loader()
    results: dict[str, str | None] = {}
    for name in names:
        try:
            loader.get(name)
            results[name] = None
        except ModelUnavailable as exc:
            results[name] = exc.reason
    return results


def start_background_warmup() -> threading.Thread | None:
    """Never blocks: the probe must answer while the models load."""
    names = warm_model_names(settings.WARM_MODELS)
    if not names:
        return None
    thread = threading.Thread(target=warm, args=(names,), name="model-warmup", daemon=True)
    thread.start()
    log.info("warming models in the background: %s", ", ".join(names))
    return thread
