"""predictors.training.printouts: real recordings drawn as machines print them, captured as
clinics capture them, cached as exactly what the ECG model would be served, split by patient."""
from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from predictors.images.decode import decode
from predictors.images.transform import model_input
from predictors.training import printouts, real_images

ECG_CARD = Path(__file__).resolve().parents[2] / "predictors" / "artifacts" / "ecg" / "card.json"
# The ECG card's input spec at a small size, so that the cache test stays fast.
SMALL_SPEC = {**json.loads(ECG_CARD.read_text())["input"], "height": 40, "width": 68}
# README.md of ecg-ptbxl: the counts of findings.csv.
README_COUNTS = {"Normal": 713, "Abnormal heartbeat": 124, "History of MI": 100, "Myocardial Infarction": 16,
                 "MI, age unknown": 79, "other": 458}


def layout(**changes: object) -> printouts.Layout:
    """A plain printout at a low resolution, changed as a test needs."""
    plain = printouts.Layout(
        family="12x1", lead_order="standard", rhythm=(), speed=25.0, gain=10.0, calibration="none", grid="none",
        grid_style="lines", grid_fade=0.0, paper="white", header="none", page="A4", margin_mm=10.0,
        font="DejaVuSans.ttf", font_mm=2.5, trace_mm=0.3, minor_mm=0.1, major_mm=0.2, labels="left",
        separators="none", frame=False, dpi=100.0)
    return dataclasses.replace(plain, **changes)


def draw(signals: np.ndarray, look: printouts.Layout) -> np.ndarray:
    return np.asarray(printouts.render_page(signals, look, np.random.default_rng(0)), dtype=np.int16)


def ink(page: np.ndarray) -> np.ndarray:
    return page.mean(axis=2) < 200  # the anti-aliased trace too


def baselines(page: np.ndarray) -> list[int]:
    """The y of each drawn row's baseline: the pixel rows that ink crosses from side to side."""
    rows = np.flatnonzero(ink(page).mean(axis=1) > 0.5)
    groups = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    return [int(group.mean()) for group in groups]


def spikes(every: int, leads: tuple[str, ...] = printouts.LEADS, mv: float = 1.0) -> np.ndarray:
    """Flat leads with a narrow 1 mV spike every `every` samples in the named leads."""
    signals = np.zeros((12, 1000), dtype=np.float32)
    for lead in leads:
        signals[printouts.LEADS.index(lead), every // 2::every] = mv
    return signals


MM = 100.0 / 25.4  # pixels per mm at 100 dpi


def ink_above(page: np.ndarray, baseline: int, low_mm: float = 3.0, high_mm: float = 8.0) -> np.ndarray:
    """The columns with ink between low_mm and high_mm above a baseline."""
    return ink(page)[baseline - round(high_mm * MM):baseline - round(low_mm * MM)].any(axis=0)


def runs(columns: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(columns.astype(np.int8)) == 1))


@pytest.fixture(scope="module")
def found() -> list[printouts.Recording]:
    return printouts.recordings()


@pytest.fixture(scope="module")
def signals(found) -> np.ndarray:
    return printouts.read_signals(found[0])


# --- recordings, findings and splits -------------------------------------------------------------


def test_findings_are_read_as_findings_csv_says(found):
    with (printouts.ptbxl_root() / "findings.csv").open(newline="") as handle:
        rows = {int(row["ecg_id"]): row for row in csv.DictReader(handle)}
    assert {r.ecg_id: r.finding for r in found} == {i: row["finding"] for i, row in rows.items()}
    assert {r.ecg_id: (r.patient_id, r.fold) for r in found} == {
        i: (int(row["patient_id"]), int(row["strat_fold"])) for i, row in rows.items()}
    assert Counter(r.finding for r in found) == README_COUNTS


def test_a_finding_outside_the_known_ones_is_refused(tmp_path):
    (tmp_path / "findings.csv").write_text("ecg_id,patient_id,strat_fold,finding,filename_lr,filename_hr\n"
                                           "1,2,3,Brugada,records100/00000/00001_lr,\n")
    with pytest.raises(ValueError, match="Brugada"):
        printouts.recordings(tmp_path)


def test_signals_are_millivolts_in_the_standard_lead_order(tmp_path):
    """A WFDB pair whose leads are stored out of order, each with its own gain and baseline."""
    stored = ["V6", "AVR", "I", "II", "III", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5"]
    raw = np.arange(12 * 5, dtype="<i2").reshape(5, 12) * 10
    raw.tofile(tmp_path / "r.dat")
    gains = [200.0 * (k + 1) for k in range(12)]
    lines = ["r 12 100 5"] + [f"r.dat 16 {gains[k]}({k - 3})/mV 16 0 0 0 0 {name}" for k, name in enumerate(stored)]
    (tmp_path / "r.hea").write_text("\n".join(lines) + "\n")
    read = printouts.read_signals(printouts.Recording(1, 1, 1, "Normal", tmp_path / "r"))
    for k, name in enumerate(stored):
        lead = printouts.LEADS[[lead.upper() for lead in printouts.LEADS].index(name)]
        np.testing.assert_allclose(read[printouts.LEADS.index(lead)], (raw[:, k] - (k - 3)) / gains[k], rtol=1e-6)


def test_fitting_and_validation_are_folds_1_to_7_and_8_and_never_share_a_patient(found):
    sides = printouts.splits(found)
    assert {r.fold for r in sides["fit"]} == set(range(1, 8))
    assert {r.fold for r in sides["validation"]} == {8}
    assert len(sides["fit"]) + len(sides["validation"]) == len(found)
    assert not {r.patient_id for r in sides["fit"]} & {r.patient_id for r in sides["validation"]}


# --- drawing --------------------------------------------------------------------------------------


def test_the_seeded_draw_covers_every_layout_family_grid_and_capture():
    drawn = [printouts.draw_layout(np.random.default_rng([5, n])) for n in range(300)]
    assert {look.family for look in drawn} == set(printouts.LAYOUT_FAMILIES)
    assert {look.grid for look in drawn} == set(printouts.GRIDS)
    assert {look.lead_order for look in drawn} == set(printouts.LEAD_ORDERS)
    assert {look.speed for look in drawn} == {25.0, 50.0}
    assert {look.gain for look in drawn} == {5.0, 10.0, 20.0}


@pytest.mark.parametrize("family", list(printouts.LAYOUT_FAMILIES))
def test_each_layout_family_draws_its_rows_of_leads(signals, family):
    look = (printouts._khan_layout(np.random.default_rng(1)) if family == "khan" else
            layout(family=family, rhythm={"3x4+1": ("II",), "3x4+3": ("V1", "II", "V5")}.get(family, ())))
    rows = {"3x4+1": 4, "3x4+3": 6, "3x4": 3, "6x2": 6, "12x1": 12, "khan": 4}[family]
    assert len(look.rows()) == rows
    assert sorted({lead for row in look.rows() for lead in row}) == sorted(printouts.LEADS)
    flat = draw(spikes(100), dataclasses.replace(look, grid="none", frame=False, separators="none", dpi=100.0))
    # The Khan header's double rule crosses the page too, but it is not a row.
    drawn = [y for y in baselines(flat) if family != "khan" or y > 30 * MM]
    assert len(drawn) == rows


def test_layout_families_and_grid_colours_each_draw_a_different_page(signals):
    pages = {family: draw(signals, layout(family=family)) for family in ("3x4", "6x2", "12x1")}
    pages["khan"] = draw(signals, printouts._khan_layout(np.random.default_rng(1)))
    for colour in printouts.GRIDS:
        pages[colour] = draw(signals, layout(grid=colour, family="3x4+1", rhythm=("II",)))
    names = list(pages)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = pages[first], pages[second]
            assert a.shape != b.shape or np.abs(a - b).max() > 30, (first, second)


def test_grid_colour_is_the_grid_s_own(signals):
    for colour, shades in printouts.GRIDS.items():
        page = draw(signals, layout(grid=colour, grid_style="major", major_mm=0.5))
        if shades is None:
            assert (page.std(axis=2) < 1).all()  # white paper, black ink: no colour anywhere
            continue
        major = np.array(shades[1])
        assert (np.abs(page - major).sum(axis=2) < 40).mean() > 0.01, colour


def test_the_same_seed_gives_the_same_bytes_and_another_seed_or_variant_does_not(signals):
    first = printouts.draw_printout(signals, 1, 0, seed=3)
    assert printouts.draw_printout(signals, 1, 0, seed=3).data == first.data
    assert printouts.draw_printout(signals, 1, 0, seed=4).data != first.data
    assert printouts.draw_printout(signals, 1, 1, seed=3).data != first.data
    assert printouts.draw_printout(signals, 2, 0, seed=3).data != first.data


def test_50_mm_per_second_shows_half_as_many_beats_per_row():
    """Spikes every 0.25 s: ten seconds of them at 25 mm/s, five at 50 mm/s, on the same paper."""
    counts = {}
    for speed in (25.0, 50.0):
        page = draw(spikes(25), layout(speed=speed))
        counts[speed] = runs(ink_above(page, baselines(page)[0]))
    assert counts == {25.0: 40, 50.0: 20}


@pytest.mark.parametrize("order, row, inverted", [("standard", 4, False), ("cabrera", 0, False),
                                                  ("standard", 3, False), ("cabrera", 2, True)])
def test_the_lead_order_decides_where_a_lead_is_drawn(order, row, inverted):
    """aVL is the fifth row of a standard 12×1 and the first of a Cabrera one; aVR is fourth in the
    standard order, and third and upside down (-aVR) in Cabrera's."""
    lead = "aVL" if row in (0, 4) else "aVR"
    page = draw(spikes(100, (lead,)), layout(lead_order=order))
    rows = baselines(page)
    assert len(rows) == 12
    where = [bool(ink_above(page, y, *((-8.0, -3.0) if inverted else (3.0, 8.0))).any()) for y in rows]
    assert where == [r == row for r in range(12)]


@pytest.mark.parametrize("gain", [5.0, 10.0, 20.0])
def test_one_millivolt_is_as_tall_as_the_calibration_pulse_and_the_gain_says(gain):
    page = draw(spikes(100, ("I",)), layout(gain=gain, calibration="start", family="3x4"))
    top_row = ink(page)
    y0 = baselines(page)[0]
    columns = np.flatnonzero(top_row[y0 - round(gain * MM * 0.5)])
    pulse, spike = columns[columns < columns.min() + 8 * MM], columns[columns > columns.min() + 8 * MM]
    assert pulse.size and spike.size
    for x in (pulse[0], spike[0]):
        column = np.flatnonzero(top_row[:y0 + 2, x])
        assert abs((y0 - column.min()) / MM - gain) < 1.0, (gain, x)


def test_every_capture_family_gives_a_different_picture_the_site_decodes(signals):
    page = printouts.render_page(signals, layout(grid="red", header="plain"), np.random.default_rng(0))
    taken = {}
    for name, (_, capture) in printouts.CAPTURES.items():
        data = capture(page, np.random.default_rng(4))
        picture = decode(data, **real_images.DECODE_LIMITS).image
        assert min(picture.size) >= 400, name
        assert data not in taken.values(), name
        taken[name] = data
    assert set(taken) == set(printouts.CAPTURES)


# --- the cache ------------------------------------------------------------------------------------


def test_the_cache_holds_model_input_of_the_decoded_capture_and_resumes(found, tmp_path):
    chosen = [found[0], found[1], found[40]]
    directory = printouts.build_cache(SMALL_SPEC, seed=2, variants=2, chosen=chosen, shard_records=32,
                                      root=tmp_path)
    cache = printouts.load_cache(directory)
    assert [(int(row["ecg_id"]), int(row["variant"])) for row in cache.rows] == [
        (r.ecg_id, v) for r in chosen for v in range(2)]
    by_id = {r.ecg_id: r for r in chosen}
    for i, row in enumerate(cache.rows):
        recording = by_id[int(row["ecg_id"])]
        assert (row["finding"], int(row["fold"]), int(row["patient_id"]), row["split"]) == (
            recording.finding, recording.fold, recording.patient_id, recording.split)
        printout = printouts.draw_printout(printouts.read_signals(recording), recording.ecg_id, int(row["variant"]), 2)
        assert (row["layout_family"], row["capture"]) == (printout.layout.family, printout.capture)
        assert json.loads(row["layout"])["family"] == printout.layout.family
        served = model_input(decode(printout.data, **real_images.DECODE_LIMITS).image, SMALL_SPEC)[0]
        assert cache.pixels(i).dtype == np.uint8 and cache.pixels(i).shape == served.shape
        assert np.array_equal(printouts.normalised(cache.pixels(i), SMALL_SPEC), served)
    shards = sorted(directory.glob("shard-*.npy"))
    assert len(shards) == 2  # ids 1-2 and 41 fall in different blocks of 32
    assert np.load(shards[0]).shape[1] == 1  # the ECG input is grey: one plane is stored
    written = {path: path.stat().st_mtime_ns for path in shards}
    shards[1].unlink()
    printouts.build_cache(SMALL_SPEC, seed=2, variants=2, chosen=chosen, shard_records=32, root=tmp_path)
    assert shards[0].stat().st_mtime_ns == written[shards[0]]  # kept
    assert shards[1].exists()  # redrawn
    assert len(printouts.load_cache(directory).rows) == 6


def test_the_cache_is_keyed_by_input_spec_renderer_and_seed():
    key = printouts.cache_key(SMALL_SPEC, 1, 4)
    assert printouts.cache_key(SMALL_SPEC, 1, 4) == key
    assert printouts.cache_key({**SMALL_SPEC, "width": 72}, 1, 4) != key
    assert printouts.cache_key(SMALL_SPEC, 2, 4) != key
    assert printouts.cache_key(SMALL_SPEC, 1, 5) != key


def test_a_spec_whose_input_is_not_8_bit_pixels_is_not_cached_as_such(signals):
    data = printouts.draw_printout(signals, 1, 0, seed=1).data
    with pytest.raises(ValueError):
        printouts.model_pixels(data, {**SMALL_SPEC, "resize": "stretch", "light": "field_of_view", "crop": None,
                                      "grid": None, "page": None})
