"""The domain score: how far an upload lies from the pictures an image model was trained on.

A model's figures hold for the kind of picture it was validated on (one ECG machine's
printouts, one fundus camera's photos); on another machine's printout its answer has no
evidence behind it, however confident. The score is the squared Mahalanobis distance of
the model's input, seen at 1/THUMBNAIL_POOL scale, from the fitting photos and their
re-captures, in the whitened space of their first COMPONENTS principal directions: the
layout of the page (rows of leads, header, margins) and the shape of the camera's field
are what that view keeps. It is computed inside the graph (an average pool and three
small nodes beside the network, about a hundred thousand multiply-adds), so any runtime
that runs the graph, local or a remote inference server, answers it beside the logits,
and the artifact stays one file.

Chosen by measurement (docs/benchmarks.md, "Domain shift"): with thresholds set the same
way, the network's own pooled features, the softmax confidence and energy of its logits,
cosine nearest neighbours and class-conditional Mahalanobis distances each refused at
most 3 of the 9 other machines' printouts in ../shared/samples/ecg; the input view
refused all 9 and none of the ECG test photos.

The threshold is the QUANTILE point of the score on validation photos and their capture
variants (never test photos, never out-of-domain examples), so ordinary photos from the
known source are still answered.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from predictors.catalogue import SPECS

log = logging.getLogger(__name__)

# Principal directions kept: enough to describe the known pictures, few enough that the
# fitting photos (a few hundred, with their re-captures) estimate each variance well.
COMPONENTS = 32
# The input is seen at this fraction of the model's input size (average pooling).
THUMBNAIL_POOL = 8
# The share of validation photos and their capture variants that the threshold answers.
QUANTILE = 0.99
# At least this many fitting rows for each principal direction kept: fewer, and the
# smallest directions' variances are noise that makes every new picture look far away.
ROWS_PER_COMPONENT = 10
# A quick test build fits on a few dozen photos, too few to place its threshold: it answers
# up to this many times its farthest validation photo, and refuses only what is far beyond.
QUICK_MARGIN = 10.0
OUTPUT = "domain_distance"
THUMBNAIL = "domain_thumbnail"
# The benchmark capture families the validation photos are re-captured with, two each in
# turn, for the threshold (predictors.training.captures.BENCHMARK).
VALIDATION_CAPTURES_PER_IMAGE = 2


@dataclass(frozen=True)
class Domain:
    """The fitted score: the fitting rows' centre, the whitening projection, and the threshold."""

    mean: np.ndarray  # (dims,)
    projection: np.ndarray  # (dims, components): principal directions scaled by 1/sd
    threshold: float

    def score(self, rows: np.ndarray) -> np.ndarray:
        """The number the graph answers, from thumbnail rows (for thresholds and checks)."""
        whitened = (np.asarray(rows, dtype=np.float32) - self.mean) @ self.projection
        return (whitened ** 2).sum(axis=1)


def fit(fitting: np.ndarray, validation: np.ndarray, quick: bool = False) -> Domain:
    """Centre and whiten the fitting rows along their main directions; threshold on validation rows."""
    x = np.asarray(fitting, dtype=np.float64)
    mean = x.mean(axis=0)
    _, singular, directions = np.linalg.svd(x - mean, full_matrices=False)
    kept = max(1, min(COMPONENTS, len(x) // ROWS_PER_COMPONENT, len(singular)))
    sd = np.maximum(singular[:kept] / np.sqrt(len(x)), 1e-6)
    unthresholded = Domain(mean.astype(np.float32), (directions[:kept].T / sd).astype(np.float32), float("inf"))
    scores = unthresholded.score(validation)
    threshold = QUICK_MARGIN * float(scores.max()) if quick else float(np.quantile(scores, QUANTILE))
    return Domain(unthresholded.mean, unthresholded.projection, threshold)


def _without_score(model: onnx.ModelProto) -> None:
    """Remove a score added before, so a graph can be given a new one."""
    graph = model.graph
    kept = [node for node in graph.node if not node.name.startswith("domain_")]
    del graph.node[:]
    graph.node.extend(kept)
    for initializer in [i for i in graph.initializer if i.name.startswith("domain_")]:
        graph.initializer.remove(initializer)
    for output in [o for o in graph.output if o.name == OUTPUT or o.name.startswith("domain_")]:
        graph.output.remove(output)


def _thumbnail_nodes(model: onnx.ModelProto) -> str:
    """Nodes that make the input's thumbnail row, named domain_*; returns its tensor."""
    graph = model.graph
    graph.node.extend([
        helper.make_node("AveragePool", [graph.input[0].name], ["domain_pooled_input"],
                         kernel_shape=[THUMBNAIL_POOL, THUMBNAIL_POOL], strides=[THUMBNAIL_POOL, THUMBNAIL_POOL],
                         name="domain_thumbnail_pool"),
        helper.make_node("Flatten", ["domain_pooled_input"], [THUMBNAIL], axis=1, name="domain_thumbnail_flatten"),
    ])
    return THUMBNAIL


def with_thumbnail_output(source: Path, target: Path) -> None:
    """A copy of the graph that also answers the thumbnail rows, for fitting; never served."""
    model = onnx.load(str(source))
    _without_score(model)
    model.graph.output.append(helper.make_tensor_value_info(_thumbnail_nodes(model), TensorProto.FLOAT, None))
    onnx.save(model, str(target))


def add_score(path: Path, domain: Domain) -> None:
    """Append the score to a graph as its `domain_distance` output (one value per image), in place."""
    model = onnx.load(str(path))
    _without_score(model)
    graph = model.graph
    thumbnail = _thumbnail_nodes(model)
    graph.initializer.extend([
        numpy_helper.from_array(domain.mean[np.newaxis, :], "domain_mean"),
        numpy_helper.from_array(domain.projection, "domain_projection"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "domain_axes"),
    ])
    graph.node.extend([
        helper.make_node("Sub", [thumbnail, "domain_mean"], ["domain_centred"], name="domain_centre"),
        helper.make_node("MatMul", ["domain_centred", "domain_projection"], ["domain_whitened"], name="domain_whiten"),
        helper.make_node("ReduceSumSquare", ["domain_whitened", "domain_axes"], [OUTPUT], keepdims=0,
                         name="domain_distance"),
    ])
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# What each model was validated on, in a sentence for the card, the API and the page.
VALIDATED_ON = {
    "ecg": "photos and scans of printouts of one 12-lead report layout (3×4 leads with a lead II rhythm "
           "strip on a pink grid, under an \"ECG REPORT\" header) from one ECG machine in one hospital",
    "retina": "colour fundus photos from one fundus camera at one eye clinic (IDRiD)",
}
# What the API and the page say instead of an answer.
OUTSIDE = {
    "ecg": "This printout is outside what the ECG model was validated on: {on}. Its reading of another "
           "machine's printout would have no evidence behind it, so it gives none: have the ECG read by a clinician.",
    "retina": "This photo is outside what the retina model was validated on: {on}. Its grade of a photo from "
              "another camera would have no evidence behind it, so it gives none: have the photo graded by a "
              "clinician.",
}


def thumbnail_rows(graph: Path, inputs: np.ndarray) -> np.ndarray:
    """The thumbnail row of every model input (N, 3, H, W), made by the graph's own nodes."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "thumbnail.onnx"
        with_thumbnail_output(graph, probe)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(probe), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run([THUMBNAIL], {name: inputs[i:i + 1].astype(np.float32)})[0]
                               for i in range(len(inputs))])


def scored_outputs(graph: Path, inputs: np.ndarray) -> np.ndarray:
    """The served graph's own domain_distance for each input (to check it against the fit)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT], {session.get_inputs()[0].name: inputs[i:i + 1].astype(np.float32)})[0]
                           for i in range(len(inputs))])


def fundus_turns(inputs: np.ndarray, seed: int) -> np.ndarray:
    """A fundus photo turned a quarter, a half or three quarters: a camera's roll, which the
    model is trained to ignore (its augmentation turns photos freely), so the score must too."""
    rng = np.random.default_rng(seed)
    return np.stack([np.rot90(x, k=int(rng.integers(1, 4)), axes=(1, 2)) for x in inputs])


def fit_and_add(name: str, graph: Path, fitting: np.ndarray, fitting_captures: np.ndarray,
                validation: np.ndarray, validation_captures: np.ndarray, seed: int, quick: bool = False,
                validated_on: str | None = None) -> dict[str, Any]:
    """Fit the score on the fitting photos and their re-captures, threshold it on validation photos and
    their capture variants, add it to the served graph, check the graph against the fit, and return the
    card's `domain` section."""
    fit_inputs = [fitting, fitting_captures]
    if SPECS[name].input == "fundus":
        fit_inputs.append(fundus_turns(fitting, seed))
    fitted = thumbnail_rows(graph, np.concatenate(fit_inputs))
    checked = np.concatenate([validation, validation_captures])
    held = thumbnail_rows(graph, checked)
    domain = fit(fitted, held, quick)
    add_score(graph, domain)
    expected = domain.score(held)
    served = scored_outputs(graph, checked)
    if not np.allclose(served, expected, rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"{name}: the graph's domain_distance differs from the fit "
                           f"(largest gap {np.abs(served - expected).max():.4f})")
    answered = float(np.mean(served <= domain.threshold))
    log.info("%s: domain score fitted on %d rows, threshold %.3f; %.1f%% of %d validation rows answered", name,
             len(fitted), domain.threshold, 100 * answered, len(checked))
    return section(name, domain, quick, fitting=len(fitted), photos=len(validation),
                   captures=len(validation_captures), answered=answered,
                   validated_on=validated_on or VALIDATED_ON[name])


def section(name: str, domain: Domain, quick: bool, *, fitting: int, photos: int, captures: int,
            answered: float, validated_on: str) -> dict[str, Any]:
    return {
        "score": (f"the squared Mahalanobis distance of the model's input, seen at 1/{THUMBNAIL_POOL} scale, from "
                  f"the fitting photos and their re-captures, over their first {domain.projection.shape[1]} "
                  "principal directions"),
        "components": int(domain.projection.shape[1]),
        "threshold": round(domain.threshold, 4),
        "threshold_rule": (f"{QUICK_MARGIN:g} times the farthest validation photo (a quick test build)" if quick
                           else f"the {QUANTILE:.0%} point of validation photos and their capture variants"),
        "fitted_on": fitting,
        "validation": {"photos": photos, "captures": captures, "answered": round(answered, 4)},
        "validated_on": validated_on,
        "message": OUTSIDE[name].format(on=validated_on),
    }


def validation_capture_inputs(paths: list[Path], kind: str, spec: dict[str, Any]) -> np.ndarray:
    """Each validation photo re-captured by benchmark families in turn (captures.BENCHMARK), seeded per photo."""
    from PIL import Image

    from predictors.images.decode import decode
    from predictors.images.transform import model_input

    from . import captures, real_images

    families = [capture for capture in captures.BENCHMARK if kind in capture.kinds]
    rows = []
    for n, path in enumerate(paths):
        original = Image.open(path).convert("RGB")
        for k in range(VALIDATION_CAPTURES_PER_IMAGE):
            capture = families[(n + 7 * k) % len(families)]
            data = captures.recapture(original, capture, seed=n)
            rows.append(model_input(decode(data, **real_images.DECODE_LIMITS).image, spec)[0])
    return np.stack(rows).astype(np.float16)
