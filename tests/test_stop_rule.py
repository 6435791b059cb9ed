"""The over-refinement stop rule (bench/overshoot_seeds.stop_rule) on small cases: it picks an end time past
t = 1 only where both metrics count it better, and then the one with the largest summed gain."""

from bench.overshoot_seeds import stop_rule, verdict


def gains(fid: float, fid2: float, better: bool) -> dict:
    return {"fid": {"mean_gain": fid}, "fid2": {"mean_gain": fid2}, "better_than_t1": better}


def test_the_rule_keeps_t1_unless_a_factor_counts_on_both_metrics():
    assert stop_rule({}) == "1"
    assert stop_rule({"1.25": gains(5.0, 5.0, False)}) == "1"
    assert stop_rule({"1.25": gains(2.109, 2.479, True), "1.5": gains(0.957, 2.474, True)}) == "1.25"
    assert stop_rule({"1.25": gains(0.5, 0.5, True), "1.5": gains(1.0, 0.2, True)}) == "1.5"


def test_a_factor_counts_when_every_seed_gains_and_the_mean_gain_exceeds_t1s_spread():
    rows = {
        "1": [{"fid": 9.0, "fid2": 9.0}, {"fid": 8.0, "fid2": 9.5}],  # spread: sd 0.707 / 0.354
        "1.25": [{"fid": 7.0, "fid2": 8.0}, {"fid": 7.5, "fid2": 8.4}],  # gains 2, 0.5 / 1, 1.1
        "1.5": [{"fid": 9.5, "fid2": 7.0}, {"fid": 7.0, "fid2": 7.0}],  # a seed loses on fid
    }
    v = verdict(rows, "1.25", ("fid", "fid2"))
    assert (
        v["fid"]["gains"] == [2.0, 0.5] and v["fid"]["mean_gain"] == 1.25 and v["fid"]["t1_spread"] == 0.707
    )
    assert v["fid2"]["mean_gain"] == 1.05 and v["better_than_t1"]
    assert not verdict(rows, "1.5", ("fid", "fid2"))["better_than_t1"]
