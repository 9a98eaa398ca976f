"""Prometheus metrics: prediction counts and latencies, model loads, process memory.

prometheus_client does the exposition format and histogram bookkeeping; the registry's
figures are read at scrape time, so the registry itself knows nothing of Prometheus.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from .memory import MB, rss_bytes

REGISTRY = CollectorRegistry(auto_describe=True)

PREDICTIONS = Counter("healthoracle_predictions_total", "Predictions answered, by model and outcome",
                      ["model", "outcome"], registry=REGISTRY)
LATENCY = Histogram("healthoracle_prediction_seconds", "Model fetch (a load when cold), preprocessing and inference per prediction",
                    ["model"], registry=REGISTRY,
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class _RegistryCollector:
    def collect(self):
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


REGISTRY.register(_RegistryCollector())


def observe(model: str, outcome: str, seconds: float | None = None) -> None:
    PREDICTIONS.labels(model=model, outcome=outcome).inc()
    if seconds is not None:
        LATENCY.labels(model=model).observe(seconds)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
