"""Prometheus metrics: prediction counts and latencies, model loads, process memory.

prometheus_client does the exposition format and histogram bookkeeping; the registry's
figures are read at scrape time, so the registry itself knows nothing of Prometheus.
The client and its instruments are made at the first prediction or scrape, not at start-up:
importing it is 17 ms of CPU on one core, which the first page after a spin-down would
otherwise wait for ten times over on the free instance's tenth of a CPU.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .memory import MB, rss_bytes

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class _Instruments:
    registry: Any  # prometheus_client.CollectorRegistry
    predictions: Any  # Counter
    latency: Any  # Histogram


_instruments: _Instruments | None = None
_lock = threading.Lock()


def _made() -> _Instruments:
    global _instruments
    with _lock:
        if _instruments is None:
            from prometheus_client import CollectorRegistry, Counter, Histogram

            registry = CollectorRegistry(auto_describe=True)
            predictions = Counter("healthoracle_predictions_total", "Predictions answered, by model and outcome",
                                  ["model", "outcome"], registry=registry)
            latency = Histogram("healthoracle_prediction_seconds",
                                "Model fetch (a load when cold), preprocessing and inference per prediction",
                                ["model"], registry=registry, buckets=LATENCY_BUCKETS)
            registry.register(_RegistryCollector())
            _instruments = _Instruments(registry, predictions, latency)
        return _instruments


class _RegistryCollector:
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from .registry import get_loader

        status = get_loader().status()
        loaded = GaugeMetricFamily("healthoracle_model_loaded", "1 if the model is resident", labels=["model"])
        load_seconds = GaugeMetricFamily("healthoracle_model_load_seconds", "Duration of the model's last load",
                                         labels=["model"])
        cost = GaugeMetricFamily("healthoracle_model_memory_bytes", "RSS the model added when it loaded",
                                 labels=["model"])
        loads = GaugeMetricFamily("healthoracle_model_loads", "Loads of the model in this worker", labels=["model"])
        for m in status["models"]:
            loaded.add_metric([m["name"]], 1.0 if m["state"] == "loaded" else 0.0)
            loads.add_metric([m["name"]], m["loads"])
            if m["load_seconds"] is not None:
                load_seconds.add_metric([m["name"]], m["load_seconds"])
            if m["cost_mb"] is not None:
                cost.add_metric([m["name"]], m["cost_mb"] * MB)
        rss = GaugeMetricFamily("healthoracle_process_resident_memory_bytes", "Worker RSS")
        rss.add_metric([], rss_bytes())
        yield from (loaded, load_seconds, cost, loads, rss)


def observe(model: str, outcome: str, seconds: float | None = None) -> None:
    instruments = _made()
    instruments.predictions.labels(model=model, outcome=outcome).inc()
    if seconds is not None:
        instruments.latency.labels(model=model).observe(seconds)


def exposition() -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(_made().registry)
