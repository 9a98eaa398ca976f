"""Which input the ECG ResNet50 should see: accuracy on real held-out printouts vs latency.

    .venv-dev/bin/python -m bench.ecg_representation [--epochs 12] [--variants page-224 leads-160x272] [--write]

Each variant trains the served recipe (same split, seed, sampling, augmentation and
schedule; only the input spec differs) for the same number of epochs, then reports
macro-F1 and per-class recall on the same real test images, and the int8 graph's
single-thread latency in ONNX Runtime. Variants:

- page-224: the whole page squeezed to 224×224, red grid kept (the original input);
- leads-160x272: the red grid's box (the lead area), grid suppressed, 160×272 (served).
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import ARTIFACTS, image_input, percentile, timed_runs_ms
from bench.report import command_line, header, parser, publish
from predictors.training import real_images, vision
from predictors.training.export import export_onnx, quantize_int8

VARIANTS = {
    "page-224": {"height": 224, "width": 224, "resize": "stretch", "interpolation": "bilinear",
                 "mean": vision.HALF_MEAN, "std": vision.HALF_STD, "channel_order": "RGB", "layout": "NCHW",
                 "scale": "pixel / 255, then (x - mean) / std"},
    "leads-160x272": vision.ecg_spec(160, 272),
}


def latency_ms(path: Path, height: int, width: int, runs: int = 30) -> tuple[float, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = image_input(height, width)
    times = timed_runs_ms(lambda: session.run(None, {"input": x}), runs)
    return percentile(times, 50), percentile(times, 95)


def evaluate(name: str, epochs: int, workers: int) -> dict:
    base = vision.recipe("ecg", quick=False)
    r = dataclasses.replace(base, input_spec=VARIANTS[name], epochs=epochs)
    items = real_images.ecg_images()
    x = vision.prepare_images([item.path for item in items], r.input_spec, workers, f"ecg {name}")
    # Group and split on the served representation, so every variant sees the same images.
    served = vision.prepare_images([item.path for item in items], VARIANTS["leads-160x272"], workers, "ecg groups")
    groups = real_images.near_duplicate_groups("ecg", served)
    y = np.array([item.label for item in items], dtype=np.int64)
    splits = vision.make_splits(r, items, groups)
    started = time.monotonic()
    model, _ = vision.train_network(r, x[splits.train], y[splits.train])
    train_s = time.monotonic() - started
    metrics = vision.metrics_for(r, y[splits.test], vision.torch_probabilities(model, x[splits.test]))
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, fp32, r.input_spec, x[splits.validation][:4].astype(np.float32))
        quantize_int8(fp32, int8, x[splits.train][:32].astype(np.float32))
        p50, p95 = latency_ms(int8, r.input_spec["height"], r.input_spec["width"])
    return {"name": name, "train_s": round(train_s), "macro_f1": metrics["macro_f1"],
            "accuracy": metrics["accuracy"], "recall": {k: v["value"] for k, v in metrics["recall"].items()},
            "test_images": metrics["images"], "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--epochs", type=int, default=12)
    options.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    options.add_argument("--workers", type=int, default=2)
    args = options.parse_args()
    import torch

    torch.set_num_threads(args.workers)
    lines = [f"{header(command_line(options, args))}: ResNet50 from scratch, "
             "the served recipe with only the input changed, pytorch fp32 figures on the same real test "
             "printouts; latency of the int8 graph, ONNX Runtime, one thread.", "",
             "| input | macro-F1 (95% CI) | accuracy | recall N / AHB / MI / HMI | int8 p50 / p95 ms | training s |",
             "|---|---|---|---|---|---|"]
    for name in args.variants:
        r = evaluate(name, args.epochs, args.workers)
        f1 = r["macro_f1"]
        recall = " / ".join(f"{v:.2f}" for v in r["recall"].values())
        lines.append(f"| {name} | {f1['value']:.3f} ({f1['ci95'][0]:.3f}–{f1['ci95'][1]:.3f}) | "
                     f"{r['accuracy']['value']:.3f} | {recall} | {r['p50_ms']} / {r['p95_ms']} | {r['train_s']} |")
        print(lines[-1], flush=True)
    if "leads-160x272" not in args.variants:
        lines.append(_served_row())
    publish("\n".join(lines), "ecg-representation", args.write)


def _served_row() -> str:
    """The served recipe is the leads-160x272 variant: its card holds the same figures,
    from the same split, and serve_bench the served latency; no need to train it twice."""
    card = json.loads((ARTIFACTS / "ecg" / "card.json").read_text())
    metrics = card["metrics"]["pytorch_fp32_test"]
    f1 = metrics["macro_f1"]
    recall = " / ".join(f"{v['value']:.2f}" for v in metrics["recall"].values())
    return (f"| leads-160x272 (served; figures from its card, `train_models ecg`, {card['training']['epochs']} "
            f"epochs) | {f1['value']:.3f} ({f1['ci95'][0]:.3f}–{f1['ci95'][1]:.3f}) | "
            f"{metrics['accuracy']['value']:.3f} | {recall} | see serve_bench | {card['training']['wall_seconds']} "
            "(whole run) |")


if __name__ == "__main__":
    main()
