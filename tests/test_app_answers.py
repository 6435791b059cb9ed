"""The app's answers on fixed inputs equal the committed record (bench/results/app_answers.json): a
refactoring that changes any view's answer fails here, naming the view. The digest's tolerance is checked on
small cases: float noise passes, a real change does not."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from bench.app_answers import changes, digest, digest_differs, environment, answers

RECORD = Path(__file__).resolve().parent.parent / "bench" / "results" / "app_answers.json"


def test_every_view_answers_as_recorded():
    record = json.loads(RECORD.read_text())
    assert set(record["answers"]) and set(record["environment"]) == set(environment())
    assert changes(record, answers()) == []


def test_text_numbers_may_move_one_printed_unit_and_no_more():
    assert digest_differs(digest("FID 5.46 at α 0.2"), digest("FID 5.47 at α 0.2")) is None
    assert digest_differs(digest("FID 5.46"), digest("FID 5.49")) == "a number changed: 5.46 -> 5.49"
    assert digest_differs(digest("n 16"), digest("n 17")) == "a number changed: 16.0 -> 17.0"
    assert digest_differs(digest("FID 5.46"), digest("FID2 5.46")).startswith("form")
    assert digest_differs(digest({"y": [0.123456789]}), digest({"y": [0.12345679]})) is None
    assert digest_differs(digest({"y": [0.123456789]}), digest({"y": [0.1236]})) is not None
    assert digest_differs(None, None) is None and digest_differs(None, digest("x")) == "one answer is empty"


def test_a_chart_is_read_by_its_numbers_not_by_plotlys_packed_arrays():
    """plotly packs numpy arrays as base64; the digest writes them out, so float noise in a chart's data
    passes and a moved value does not."""
    import plotly.graph_objects as go

    x = np.linspace(0.1, 1.0, 50)
    chart = digest(go.Figure(go.Histogram(x=x)))
    assert chart["numbers"][:3] == [[0.1, 1], [0.118367, 6], [0.136735, 6]]
    assert digest_differs(chart, digest(go.Figure(go.Histogram(x=x * (1 + 1e-9))))) is None
    moved = x.copy()
    moved[7] += 0.01
    assert digest_differs(chart, digest(go.Figure(go.Histogram(x=moved)))).startswith("a number changed")


def test_a_picture_may_move_by_float_noise_but_not_by_a_changed_region(tmp_path):
    a = np.full((64, 64), 100, np.uint8)
    noisy, changed = a.copy(), a.copy()
    noisy[3, 5] = 101  # one grey level on one pixel: 1/64 of a level in its cell
    changed[:8, :8] = 140  # one cell 40 levels brighter
    paths = []
    for name, img in (("a", a), ("noisy", noisy), ("changed", changed)):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(img).save(paths[-1])
    base, same, moved = (digest(p) for p in paths)
    assert base["form"] == "picture 64x64" and len(base["numbers"]) == 8 * 8 * 3
    assert digest_differs(base, same) is None
    assert digest_differs(base, moved) == "grey levels differ by up to 40.00"


def test_a_record_from_this_environment_also_needs_bit_identity():
    d = digest("FID 5.46")
    record = {"environment": environment(), "answers": {"v": [{"exact": "aaaa", "digest": d}]}}
    now = {"v": [{"exact": "bbbb", "digest": d}]}
    assert changes(record, now) == ["v [output 0]: not bit-identical in the recorded environment"]
    record["environment"] = {**environment(), "cpu": "another"}
    assert changes(record, now) == []
    record["environment"] = {**environment(), "cpu_model": "another maker's CPU"}
    assert changes(record, now) == []
    assert changes(record, {}) == ["v: 1 outputs -> 0"]
