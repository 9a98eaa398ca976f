"""The served image models' figures on real held-out photographs, against issue 12's targets.

    .venv/bin/python -m bench.model_quality [--write]

Reads the shipped cards (predictors/artifacts/<name>/card.json), which `train_models`
wrote from real images the models never trained on, and the artifact sizes on disk.
"""
from __future__ import annotations

import json

from bench.harness import ARTIFACTS
from bench.report import command_line, header, parser, publish, verdict


def _ci(metric: dict) -> str:
    low, high = metric["ci95"]
    return f"{metric['value']:.3f} ({low:.3f}–{high:.3f})"


def report(command: str) -> str:
    retina = json.loads((ARTIFACTS / "retina" / "card.json").read_text())
    ecg = json.loads((ARTIFACTS / "ecg" / "card.json").read_text())
    rt, et = retina["metrics"]["test"], ecg["metrics"]["test"]
    recalls = et["recall"]
    worst_recall = min(v["value"] for v in recalls.values())
    sizes = {name: sum(p.stat().st_size for p in (ARTIFACTS / name).rglob("*") if p.is_file()) / 1e6
             for name in ("diabetes", "heart", "retina", "ecg")}
    total = sum(sizes.values())
    minutes = (retina["training"]["wall_seconds"] + ecg["training"]["wall_seconds"]) / 60
    lines = [
        f"{header(command, verb='Read')} from the shipped cards. Intervals are 95% bootstrap intervals over "
        "test images.", "",
        f"Retina (served {retina['quantization']['served']}, input {retina['input']['height']}×"
        f"{retina['input']['width']}), IDRiD's official test split, {rt['images']} photos:", "",
        "| metric | value (95% CI) | target |", "|---|---|---|",
        f"| referable-DR (grade ≥ 2) AUC | {_ci(rt['referable_dr_auc'])} | ≥ 0.90: "
        f"{verdict(rt['referable_dr_auc']['value'] >= 0.90)} |",
        f"| sensitivity at 80% specificity | {_ci(rt['sensitivity_at_80_specificity'])} | |",
        f"| quadratic weighted kappa | {_ci(rt['quadratic_weighted_kappa'])} | ≥ 0.70: "
        f"{verdict(rt['quadratic_weighted_kappa']['value'] >= 0.70)} |",
        f"| accuracy (5 grades) | {_ci(rt['accuracy'])} | |", "",
        f"ECG (served {ecg['quantization']['served']}, input {ecg['input']['height']}×{ecg['input']['width']}, "
        f"lead area, grid suppressed), held-out real printouts, {et['images']} photos:", "",
        "| metric | value (95% CI) | test images | target |", "|---|---|---|---|",
        f"| macro-F1 | {_ci(et['macro_f1'])} | {et['images']} | ≥ 0.85: {verdict(et['macro_f1']['value'] >= 0.85)} |",
        f"| accuracy | {_ci(et['accuracy'])} | {et['images']} | |",
        *[f"| recall {label} | {_ci(value)} | {et['support'][label]} | ≥ 0.70: {verdict(value['value'] >= 0.70)} |"
          for label, value in recalls.items()], "",
        f"Lowest class recall {worst_recall:.3f} (target ≥ 0.70: {verdict(worst_recall >= 0.70)}). "
        f"int8: retina {retina['quantization']['decision']}; ECG {ecg['quantization']['decision']}.", "",
        "Artifacts on disk: " + ", ".join(f"{name} {size:.1f} MB" for name, size in sizes.items())
        + f"; total {total:.1f} MB (target ≤ 40: {verdict(total <= 40)}).",
        f"Training time recorded on the cards (`train_models retina ecg`, 2 CPU threads): {minutes:.1f} minutes "
        f"(target ≤ 90: {verdict(minutes <= 90)}).",
    ]
    return "\n".join(lines)


def main() -> None:
    options = parser(__doc__)
    args = options.parse_args()
    publish(report(command_line(options, args)), "model-quality", args.write)


if __name__ == "__main__":
    main()
