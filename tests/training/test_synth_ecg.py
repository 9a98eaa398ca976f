"""predictors.training.synth_ecg: synthetic 12-lead ECGs, reproducible, each class as its ECG looks."""
from __future__ import annotations

import numpy as np

from predictors.images.gate import scene_scores
from predictors.training import synth_ecg


def test_ecg_generator_is_deterministic_and_gated_as_ecg():
    record = synth_ecg.simulate(0, 3)
    assert record.signals.shape[0] == 12 and record.signals.shape[1] >= 10 * synth_ecg.RATE
    again = synth_ecg.simulate(0, 3)
    assert np.array_equal(record.signals, again.signals)
    a, b = synth_ecg.render(record, 1), synth_ecg.render(record, 1)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert scene_scores(a).kind == "ecg"


def rr_irregularity(record) -> float:
    peaks = synth_ecg.r_peaks(record.signals)
    rr = np.diff(peaks) / synth_ecg.RATE
    return float(np.std(np.diff(rr)))


def test_ecg_classes_differ_as_their_ecgs_do():
    normal = [synth_ecg.simulate(0, s) for s in range(3)]
    af = [synth_ecg.simulate(1, s) for s in range(3)]
    mi = [synth_ecg.simulate(2, s) for s in range(3)]
    # Atrial fibrillation: beat-to-beat RR changes far larger than sinus rhythm's.
    assert min(rr_irregularity(r) for r in af) > 2 * max(rr_irregularity(r) for r in normal)
    # Acute MI: the ST segment sits above baseline in the territory's leads.
    def st_level(record, leads):
        peaks = synth_ecg.r_peaks(record.signals)
        rows = [synth_ecg.LEADS.index(lead) for lead in leads]
        offset = int(0.12 * synth_ecg.RATE)
        return float(np.mean([record.signals[rows, p + offset] for p in peaks if p + offset < record.signals.shape[1]]))
    for record in mi:
        leads, _ = synth_ecg.TERRITORIES[record.territory]
        assert st_level(record, leads) > st_level(normal[0], leads) + 0.1
