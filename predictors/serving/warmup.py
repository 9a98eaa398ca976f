"""Load the models named in WARM_MODELS in a background thread once a worker can serve and has
answered the requests that waited for it (predictors/server/bridge.py): not beside the waking page.

Forms first, then images (MODEL_SPECS order): the two XGBoost models load in a fraction
of a second and the first visitor after a spin-down most often opens a form, while the
image models take seconds of a tenth of a CPU each.

The thread is stopped between models when the worker exits, and its last load is
waited for: a process that exits while ONNX Runtime builds a session on another thread
dies of SIGABRT ("terminate called without an active exception") instead of exiting.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from django.conf import settings

from predictors.catalogue import MODEL_SPECS

from .registry import ModelUnavailable, get_loader

log = logging.getLogger(__name__)

# How long a replacement worker waits for its predecessor to exit before loading anyway.
PREDECESSOR_WAIT_SECONDS = 60

_stop = threading.Event()
_thread: threading.Thread | None = None


def warm_model_names(requested: list[str]) -> list[str]:
    names = [s.name for s in MODEL_SPECS]
    if any(item.lower() == "all" for item in requested):
        return names
    unknown = [item for item in requested if item not in names]
    if unknown:
        log.warning("WARM_MODELS names unknown model(s) %s; known: %s", unknown, names)
    return [name for name in names if name in requested]


def warm(names: list[str]) -> dict[str, str | None]:
    """Load each model unless stopped; returns name -> None on success or the reason it failed."""
    loader = get_loader()
    results: dict[str, str | None] = {}
    for name in names:
        if _stop.is_set():
            break
        try:
            loader.get(name)
            results[name] = None
        except ModelUnavailable as exc:
            results[name] = exc.reason
    return results


def start_background_warmup(after: Callable[[float], None] = lambda timeout: None) -> threading.Thread | None:
    """Never blocks: the probe must answer while the models load.

    `after(timeout)` runs first in the thread: the server lowers the thread's priority
    there, and a replacement worker waits for the worker it replaces to exit, so two
    copies of the models never coexist.
    """
    global _thread
    names = warm_model_names(settings.WARM_MODELS)
    if not names:
        return None

    def run() -> None:
        after(PREDECESSOR_WAIT_SECONDS)
        warm(names)

    _stop.clear()
    _thread = threading.Thread(target=run, name="model-warmup", daemon=True)
    _thread.start()
    log.info("warming models in the background: %s", ", ".join(names))
    return _thread


def stop_warmup(timeout: float = 60.0) -> None:
    """Load no further model and wait for the one loading now (the worker is exiting)."""
    _stop.set()
    if _thread is not None and _thread.is_alive():
        _thread.join(timeout)
