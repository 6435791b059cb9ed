"""The Open questions tab draws what the bundle stores and says what it does not: the stop rule's table holds
the stored scores, the invertibility chart's points are the stored gains with the bundle's own round trip
marked, a bundle without a stored answer names the command that stores it, and a broken file is refused."""

import json

import pytest

from app import registry
from bfr_core.infra.checkpoint import CheckpointError
from app.tabs import questions
from bfr_core.views.invertibility import failure_point, failure_points, load_invertibility, own_round_trip
from bfr_core.views.stop_rule import load_stop_rule, mean_sd


def point(label: str, rt: float, regime: str, kind: str = "k") -> dict:
    return {"label": label, "kind": kind, "round_trip_mae": rt, "gain_pct": {"fid": 1.0}, "regime": regime}


def test_the_failure_point_is_where_the_lfr_stops_helping_for_good():
    pts = [point("a", 0.001, "helps"), point("c", 0.1, "hurts"), point("b", 0.01, "within the spread")]
    assert failure_point(pts)["label"] == "b"
    assert (
        failure_point([point("a", 0.001, "helps"), point("b", 0.01, "hurts"), point("c", 0.1, "helps")])
        is None
    )
    assert failure_point([point("a", 0.001, "hurts")])["label"] == "a"
    mixed = [
        point("e1", 0.11, "hurts", "inversion"),
        point("s6", 0.2, "helps", "noise"),
        point("e2", 0.07, "helps", "inversion"),
    ]
    assert failure_point(mixed) is None  # one curve for both kinds hides that the coarse inversion fails
    assert {k: v and v["label"] for k, v in failure_points(mixed).items()} == {
        "inversion": "e1",
        "noise": None,
    }


def test_a_broken_or_foreign_curve_file_is_refused_by_name(tmp_path):
    class Stub:
        path = tmp_path

    assert load_invertibility(Stub) is None
    for text in ("{broken", json.dumps({"points": []}), json.dumps({"points": [{"label": "x"}]}), "[1, 2]"):
        (tmp_path / "invertibility.json").write_text(text)
        with pytest.raises(
            CheckpointError, match="invertibility.json: not a valid stored invertibility curve"
        ):
            load_invertibility(Stub)


@pytest.mark.parametrize("bundle", ["digits", "mnist-leak"])
def test_the_stop_rule_table_shows_the_stored_scores(bundle):
    stored = load_stop_rule(registry.pipeline(bundle).bundle)
    assert stored is not None, f"{bundle} ships a stop rule"
    text = questions.stop_rule_view(bundle)
    for row, runs in stored["scores"].items():
        cells = " | ".join(mean_sd([r[m] for r in runs]) for m in stored["metrics"])
        assert cells in text, row
    assert f"| {stored['choice']} ← rule" in text


def test_the_invertibility_chart_draws_the_stored_gains_and_marks_the_bundles_round_trip():
    b = registry.pipeline("digits").bundle
    stored = load_invertibility(b)
    assert stored is not None, "digits ships its invertibility curve"
    update, fig, text = questions.invertibility_view("digits", "")
    ordered = sorted(stored["points"], key=lambda p: p["round_trip_mae"])
    assert [c[0] if isinstance(c, tuple) else c for c in update["choices"]] == [p["label"] for p in ordered]
    drawn = {trace.name: (list(trace.x), list(trace.y)) for trace in fig.data}
    for kind in {p["kind"] for p in ordered}:  # every stored gain on its kind's line, per metric
        pts = [p for p in ordered if p["kind"] == kind]
        for m in questions.GAIN_METRICS:
            xy = ([p["round_trip_mae"] for p in pts], [p["gain_pct"][m] for p in pts])
            assert drawn[f"{kind} · {m.upper()}"] == xy
    assert fig.layout.shapes[0].x0 == pytest.approx(own_round_trip(b))  # the bundle's own round trip
    last = ordered[-1]
    _, fig, text = questions.invertibility_view("digits", last["label"])
    assert f"**{last['kind']}: {last['label']}**" in text
    assert list(fig.data[-1].y) == [last["gain_pct"][m] for m in questions.GAIN_METRICS]  # the picked point
    for kind, f in failure_points(stored["points"]).items():
        assert (f"{kind}: from {f['label']}" if f else f"{kind}: helps throughout") in text


def test_a_bundle_without_stored_answers_names_the_commands():
    assert "`python -m bfr_core stop-rule --bundle checkpoints/moons`" in questions.stop_rule_view("moons")
    update, fig, text = questions.invertibility_view("moons", "")
    assert (
        update["value"] == ""
        and fig is None
        and "python -m bench.invertibility --bundle checkpoints/moons" in text
    )
