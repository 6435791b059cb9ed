"""The Over-refinement tab's charts drawn from stored sweeps: the equal-NFE chart, the α map and its verdicts,
and the checks a stored sweep passes before it is shown."""

import pytest

from app.tabs import overrefine_views


def test_the_equal_nfe_view_names_the_refiners_that_beat_every_base_only_setting():

    fig, text = overrefine_views.worth_nfe("digits")
    stored = __import__("json").loads(open("checkpoints/digits/worth_nfe.json").read())
    best = min(r["fid"] for r in stored["rows"] if r["row"].startswith("base"))
    better = [r["row"] for r in stored["rows"] if not r["row"].startswith("base") and r["fid"] < best]
    assert f"{best:.2f}" in text and better and all(b.replace("_", " ").upper() in text for b in better)
    assert [t.name for t in fig.data][:2] == ["more base steps", "default base + a refiner"]
    with pytest.raises(Exception, match="stores no equal-NFE comparison"):
        overrefine_views.worth_nfe("moons")


def test_the_alpha_map_view_draws_the_stored_grid_outlines_the_best_cell_and_explains_a_fixed_alpha():

    fig, text = overrefine_views.alpha_map("digits")
    m_file = __import__("json").loads(open("checkpoints/digits/alpha_nfe.json").read())
    m = m_file["map"]
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == m["quality"] and list(heat.y) == [f"{a:g}" for a in m["alphas"]]
    best = m["best"]
    assert best["quality"] == min(min(r) for r in m["quality"])
    assert f"α = {best['alpha']:g} with {best['nfe']} LFR Euler step(s)" in text
    assert f"stored by `{m_file['command']}`" in text  # beside the chart
    # the chart has half of a 1,024 px page: its title's lines are short enough to be read whole there
    lines = fig.layout.title.text.replace("<sup>", "").replace("</sup>", "").split("<br>")
    assert len(lines) == 3 and max(map(len, lines)) <= 60, lines  # title, scores, the dashed line's name
    assert f"best α {best['alpha']:g} at NFE {best['nfe']}" in lines[1]
    box = fig.layout.shapes[0]  # the outline sits on the best cell
    assert (box.x0 + box.x1) / 2 == m["nfes"].index(best["nfe"])
    assert (box.y0 + box.y1) / 2 == m["alphas"].index(best["alpha"])
    assert (heat.zmin, heat.zmax) == (best["quality"], max(max(r) for r in m["quality"]))  # digits beats base
    assert f"base {m['base']:.3g}" in heat.colorbar.ticktext
    with pytest.raises(Exception, match="trained at one fixed α, so it has no α axis"):
        overrefine_views.alpha_map("mnist")


def test_an_alpha_map_whose_every_cell_is_worse_than_the_base_has_no_bright_cell():
    """cifar10-cpu: every α × NFE cell is worse than the base, so the colour scale starts at the base's value
    (bright) and the best cell sits well into the dark end, as the text beside it says."""
    fig, text = overrefine_views.alpha_map("cifar10-cpu")
    m = __import__("json").loads(open("checkpoints/cifar10-cpu/alpha_nfe.json").read())["map"]
    heat = fig.data[0]
    assert m["best"]["quality"] > m["base"] and heat.zmin == m["base"]
    assert list(heat.colorbar.ticktext) == [f"base {m['base']:.3g}", f"{heat.zmax:.3g}"]  # one label each
    assert (m["best"]["quality"] - heat.zmin) / (heat.zmax - heat.zmin) > 0.15  # not the bright end
    assert "No cell beats the base" in text


def test_the_alpha_map_calls_over_refinement_only_beyond_the_noise_floor(monkeypatch):

    def stored(last):  # one α: best at 8 steps, then 10 steps scoring ``last``
        row = [9.0, 6.0, 5.0, last]
        best = {"alpha": 0.5, "nfe": 8, "quality": 5.0}
        return {
            "n": 1000,
            "command": "bfr sweep --alphas 0.5",
            "map": {
                "metric": "fid",
                "alphas": [0.5],
                "nfes": [1, 4, 8, 10],
                "base": 9.5,
                "quality": [row],
                "second": None,
                "best": best,
            },
        }

    monkeypatch.setattr(overrefine_views, "load_alpha_map", lambda bundle: stored(5.05))
    assert "no over-refinement beyond noise" in overrefine_views.alpha_map("digits")[1]  # +1%: within 2%
    monkeypatch.setattr(overrefine_views, "load_alpha_map", lambda bundle: stored(5.5))
    assert "10 steps give 5.5: more NFE for less, over-refinement" in overrefine_views.alpha_map("digits")[1]
    monkeypatch.undo()
    text = overrefine_views.alpha_map("mnist-alpha")[1]  # the shipped MNIST map: flat from 8 to 10 steps
    assert "α = 0.5 with 8 LFR Euler step(s), FID 5.69 against the base's 9.15" in text
    assert "no over-refinement beyond noise" in text


def test_a_stored_sweep_is_validated_before_it_is_shown(tmp_path):
    import json
    from types import SimpleNamespace

    from bfr_core.infra.checkpoint import CheckpointError
    from bfr_core.views.sweep import SWEEP_FILE, load_sweep

    bundle = SimpleNamespace(path=tmp_path)
    assert load_sweep(bundle) is None  # none stored: the view measures live
    good = {"n": 2000, "command": "bfr sweep", "alpha": 0.2, "sweep": {"base": 9.0, "lfr": [[1, 8.0]]}}
    (tmp_path / SWEEP_FILE).write_text(json.dumps(good))
    assert load_sweep(bundle) == good
    for bad in (
        {**good, "sweep": {"base": "9"}},
        {**good, "alpha": "x"},
        {k: v for k, v in good.items() if k != "n"},
    ):
        (tmp_path / SWEEP_FILE).write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=f"{SWEEP_FILE}: not a valid stored NFE sweep"):
            load_sweep(bundle)
    (tmp_path / SWEEP_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid stored NFE sweep"):
        load_sweep(bundle)


def test_a_file_hash_is_kept_per_version_of_the_file(tmp_path):
    import hashlib
    import os

    from bfr_core.views.sweep import file_sha256

    f = tmp_path / "lfr.safetensors"
    f.write_bytes(b"first")
    assert file_sha256(f) == hashlib.sha256(b"first").hexdigest() == file_sha256(f)
    f.write_bytes(b"other")  # the same size: the modification time tells the versions apart
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert file_sha256(f) == hashlib.sha256(b"other").hexdigest()


def test_the_sweep_chart_draws_the_independent_metric_dashed_when_stored():
    from app.figures import sweep_curves

    sweep = {"metric": "fid", "base": 9.0, "lfr": [(1, 8.0), (2, 7.0)], "dfr": [(1, 5.0), (2, 4.0)]}
    assert [t.name for t in sweep_curves(sweep).data] == ["LFR (Euler steps)", "DFR (Euler steps)", "base"]
    sweep["metrics"] = {"base": {"fid2": 6.0}, "lfr 1": {"fid2": 5.0}, "lfr 2": {"fid2": 4.5}}
    fig = sweep_curves(sweep)
    traces = fig.data
    assert [t.name for t in traces] == [
        "LFR (Euler steps)",
        "LFR, FID2 (independent)",
        "DFR (Euler steps)",
        "base",
        "base, FID2",
    ]
    assert list(traces[1].y) == [5.0, 4.5] and traces[1].line.dash == "dot"
    assert list(traces[3].y) == [9.0, 9.0] and list(traces[4].x) == [1, 2]
    # the log axis holds the data and no more (it once ran to 10^18: annotations read in log units)
    lo, hi = fig.layout.yaxis.range
    assert 10**lo == pytest.approx(4.0 / 1.15) and 10**hi == pytest.approx(9.0 * 1.15)
    assert not fig.layout.annotations
