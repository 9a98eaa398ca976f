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

That view cannot tell every other machine's page from the validated one's: a PTB-XL
recording printed by another renderer in a 3×4 layout on a pink grid, with its header in a
column beside the leads or as a PDF export, lies as close to the Khan photos as they lie
to each other, and the served ECG model answered about a quarter of such pages wrongly
at 80% or more. Where the recipe has printouts of other machines to learn from (the ECG
model: predictors.training.printouts, PTB-XL fitting folds only), a second check is
fitted beside it: a logistic regression on the network's own pooled features (square-
rooted, standardised) telling the fitting photos and their re-captures from those
printouts, with its threshold on the logit at the same QUANTILE point of the validation
photos and their capture variants. One-class distances on those features could not (the
Mahalanobis distance at any number of directions refused no more of those pages); the
learnt contrast refused 99% of the second renderer's pages, none of them ever fitted on,
while the validation photos and their capture variants answered went from 98.9% to 97.8%
and the test photos answered stayed the same (docs/benchmarks.md, "Domain shift"). The graph then answers the larger of two ratios,
each at most 1 inside: the layout distance over its threshold, and the machine odds over
the odds at theirs.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
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
# The machine check's L2 strength (scikit-learn's C, on standardised features), chosen by
# measurement: at 0.01 it refused 83% of drawn validation printouts, at 0.1 93%, with the same
# validation photos answered.
MACHINE_C = 0.1
# A quick build's machine check answers up to this much above its highest validation logit.
QUICK_LOGIT_MARGIN = 2.0
OUTPUT = "domain_distance"
THUMBNAIL = "domain_thumbnail"
FEATURES = "domain_features"
# The benchmark capture families the validation photos are re-captured with, two each in
# turn, for the threshold (predictors.training.captures.BENCHMARK).
VALIDATION_CAPTURES_PER_IMAGE = 2


@dataclass(frozen=True)
class MachineCheck:
    """The fitted contrast between the validated machine's pictures and other machines' printouts:
    a logit from the square roots of the network's pooled features, standardisation folded in."""

    weights: np.ndarray  # (features,)
    bias: float
    threshold: float  # the logit above which a picture is taken for another machine's

    def logit(self, features: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(np.asarray(features, dtype=np.float32), 0)) @ self.weights + np.float32(self.bias)


@dataclass(frozen=True)
class Domain:
    """The fitted score: the fitting rows' centre, the whitening projection, the layout threshold, and
    where the recipe has other machines' printouts, the machine check."""

    mean: np.ndarray  # (dims,)
    projection: np.ndarray  # (dims, components): principal directions scaled by 1/sd
    threshold: float
    machine: MachineCheck | None = None

    def layout_distance(self, rows: np.ndarray) -> np.ndarray:
        """The squared Mahalanobis distance of thumbnail rows from the fitting rows."""
        whitened = (np.asarray(rows, dtype=np.float32) - self.mean) @ self.projection
        return (whitened ** 2).sum(axis=1)

    def score(self, rows: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """The number the graph answers (for thresholds and checks): the layout distance, or with a
        machine check the larger of the two ratios to their thresholds."""
        distance = self.layout_distance(rows)
        if self.machine is None:
            return distance
        odds = np.exp(self.machine.logit(features) - np.float32(self.machine.threshold))
        return np.maximum(distance / np.float32(self.threshold), odds)

    @property
    def served_threshold(self) -> float:
        """What the card's `domain.threshold` holds: the graph's answer at most this is inside."""
        return self.threshold if self.machine is None else 1.0


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


def fit_machine(validated: np.ndarray, others: np.ndarray, validation: np.ndarray, quick: bool = False) -> MachineCheck:
    """The machine check from pooled features: the validated machine's fitting pictures against other
    machines' printouts (classes weighted equally), thresholded on validation pictures."""
    from sklearn.linear_model import LogisticRegression

    x = np.sqrt(np.maximum(np.concatenate([validated, others]).astype(np.float64), 0))
    y = np.r_[np.zeros(len(validated)), np.ones(len(others))]
    centre, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=MACHINE_C, class_weight="balanced", max_iter=5000).fit((x - centre) / scale, y)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - centre @ weights)
    unthresholded = MachineCheck(weights.astype(np.float32), bias, float("inf"))
    logits = unthresholded.logit(validation)
    threshold = float(logits.max()) + QUICK_LOGIT_MARGIN if quick else float(np.quantile(logits, QUANTILE))
    return MachineCheck(unthresholded.weights, bias, threshold)


def _pooled_features(model: onnx.ModelProto) -> str:
    """The tensor of the network's pooled features: the one global average before its head."""
    pools = [node for node in model.graph.node
             if node.op_type in ("ReduceMean", "GlobalAveragePool") and not node.name.startswith("domain_")]
    if len(pools) != 1:
        raise ValueError(f"expected one global average pool in the graph, found {len(pools)}")
    return pools[0].output[0]


def _feature_nodes(model: onnx.ModelProto) -> str:
    """A node that flattens the pooled features to rows, named domain_*; returns its tensor."""
    model.graph.node.append(helper.make_node("Flatten", [_pooled_features(model)], [FEATURES], axis=1,
                                             name="domain_features_flatten"))
    return FEATURES


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


def with_probe_outputs(source: Path, target: Path) -> None:
    """A copy of the graph that also answers the thumbnail and pooled-feature rows, for fitting; never served."""
    model = onnx.load(str(source))
    _without_score(model)
    model.graph.output.extend([helper.make_tensor_value_info(_thumbnail_nodes(model), TensorProto.FLOAT, None),
                               helper.make_tensor_value_info(_feature_nodes(model), TensorProto.FLOAT, None)])
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
    layout = OUTPUT if domain.machine is None else "domain_layout_distance"
    graph.node.extend([
        helper.make_node("Sub", [thumbnail, "domain_mean"], ["domain_centred"], name="domain_centre"),
        helper.make_node("MatMul", ["domain_centred", "domain_projection"], ["domain_whitened"], name="domain_whiten"),
        helper.make_node("ReduceSumSquare", ["domain_whitened", "domain_axes"], [layout], keepdims=0,
                         name="domain_layout"),
    ])
    if domain.machine is not None:
        machine = domain.machine
        features = _feature_nodes(model)
        graph.initializer.extend([
            numpy_helper.from_array(np.array(1.0 / domain.threshold, dtype=np.float32), "domain_layout_scale"),
            numpy_helper.from_array(machine.weights.astype(np.float32), "domain_machine_weights"),
            numpy_helper.from_array(np.array(machine.bias - machine.threshold, dtype=np.float32),
                                    "domain_machine_offset"),
        ])
        graph.node.extend([
            helper.make_node("Mul", [layout, "domain_layout_scale"], ["domain_layout_ratio"], name="domain_layout_ratio"),
            helper.make_node("Sqrt", [features], ["domain_features_root"], name="domain_features_root"),
            helper.make_node("MatMul", ["domain_features_root", "domain_machine_weights"], ["domain_machine_logit"],
                             name="domain_machine_logit"),
            helper.make_node("Add", ["domain_machine_logit", "domain_machine_offset"], ["domain_machine_excess"],
                             name="domain_machine_excess"),
            helper.make_node("Exp", ["domain_machine_excess"], ["domain_machine_odds"], name="domain_machine_odds"),
            helper.make_node("Max", ["domain_layout_ratio", "domain_machine_odds"], [OUTPUT], name="domain_distance"),
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


def probe_rows(graph: Path, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The thumbnail and pooled-feature rows of every model input (N, 3, H, W), made by the graph's own nodes."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "probe.onnx"
        with_probe_outputs(graph, probe)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(probe), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        rows = [session.run([THUMBNAIL, FEATURES], {name: inputs[i:i + 1].astype(np.float32)})
                for i in range(len(inputs))]
    return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])


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
                validated_on: str | None = None, other_machines: np.ndarray | None = None) -> dict[str, Any]:
    """Fit the score on the fitting photos and their re-captures (and the machine check against
    `other_machines`' printouts, where given), threshold it on validation photos and their capture
    variants, add it to the served graph, check the graph against the fit, and return the card's
    `domain` section."""
    fit_inputs = [fitting, fitting_captures]
    if SPECS[name].input == "fundus":
        fit_inputs.append(fundus_turns(fitting, seed))
    fitted, fitted_features = probe_rows(graph, np.concatenate(fit_inputs))
    checked = np.concatenate([validation, validation_captures])
    held, held_features = probe_rows(graph, checked)
    domain = fit(fitted, held, quick)
    refused_others = None
    if other_machines is not None:
        others = probe_rows(graph, other_machines)[1]
        domain = replace(domain, machine=fit_machine(fitted_features, others, held_features, quick))
        refused_others = float(np.mean(domain.machine.logit(others) > domain.machine.threshold))
    add_score(graph, domain)
    expected = domain.score(held, held_features)
    served = scored_outputs(graph, checked)
    if not np.allclose(served, expected, rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"{name}: the graph's domain_distance differs from the fit "
                           f"(largest gap {np.abs(served - expected).max():.4f})")
    answered = float(np.mean(served <= domain.served_threshold))
    log.info("%s: domain score fitted on %d rows, threshold %.3f; %.1f%% of %d validation rows answered", name,
             len(fitted), domain.served_threshold, 100 * answered, len(checked))
    return section(name, domain, quick, fitting=len(fitted), photos=len(validation),
                   captures=len(validation_captures), answered=answered,
                   validated_on=validated_on or VALIDATED_ON[name],
                   other_machines=None if other_machines is None else (len(other_machines), refused_others))


def section(name: str, domain: Domain, quick: bool, *, fitting: int, photos: int, captures: int,
            answered: float, validated_on: str, other_machines: tuple[int, float] | None = None) -> dict[str, Any]:
    layout = (f"the squared Mahalanobis distance of the model's input, seen at 1/{THUMBNAIL_POOL} scale, from "
              f"the fitting photos and their re-captures, over their first {domain.projection.shape[1]} "
              "principal directions")
    rule = (f"{QUICK_MARGIN:g} times the farthest validation photo (a quick test build)" if quick
            else f"the {QUANTILE:.0%} point of validation photos and their capture variants")
    common = {
        "components": int(domain.projection.shape[1]),
        "fitted_on": fitting,
        "validation": {"photos": photos, "captures": captures, "answered": round(answered, 4)},
        "validated_on": validated_on,
        "message": OUTSIDE[name].format(on=validated_on),
    }
    if domain.machine is None:
        return {"score": layout, "threshold": round(domain.threshold, 4), "threshold_rule": rule, **common}
    printouts, refused = other_machines
    return {
        "score": (f"the larger of two ratios, each at most 1 inside: {layout}, over its threshold "
                  f"{domain.threshold:.4g}; and the odds that the picture is another machine's printout (a "
                  "logistic regression on the square roots of the network's pooled features, fitted against "
                  f"{printouts} printouts of PTB-XL fitting-fold recordings drawn in other machines' layouts), "
                  f"over the odds at its threshold"),
        "threshold": 1.0,
        "threshold_rule": f"each part's threshold is {rule}",
        "layout_threshold": round(domain.threshold, 4),
        "machine": {"printouts": printouts, "logit_threshold": round(domain.machine.threshold, 4),
                    "fitting_printouts_refused": round(refused, 4),
                    "quick_rule": f"{QUICK_LOGIT_MARGIN:g} above the highest validation logit" if quick else None},
        **common,
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
