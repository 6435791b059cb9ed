"""The DFR augmentation sweep's arithmetic (bench/dfr_augment.py): seed means and ranges, the regime rule
(both metrics beyond the seed range), the best point and the too-weak / too-strong verdict."""

from pathlib import Path

import pytest

from bench import dfr_augment as da

BUNDLE = Path("b")
# FID and FID2 per point, for seeds 7 and 8: blur helps up to 0.5–1 px, then helps less; noise never helps
TRUE = {
    "dfr_none": (20, 12),
    "dfr_blur-paper": (19, 13),
    "dfr_blur-strong": (5, 4),
    "dfr_blur-1to2": (7, 6),
    "dfr_blur-2to4": (12, 9),
    "dfr_noise": (18, 11),
    "dfr_noise-10": (9.05, 8.05),
    "dfr_noise-30": (10, 9),
}


def per_seed() -> dict:
    out = {}
    for seed, wobble in ((7, -0.05), (8, 0.05)):
        cands = {
            str(BUNDLE / "ablation" / f"{f}.safetensors"): {"fid": a + wobble, "fid2": b - wobble}
            for f, (a, b) in TRUE.items()
        }
        out[seed] = {"base_fid": 9 + wobble, "base_fid2": 8, "candidates": cands}
    return out


def test_seed_stats_are_mean_and_range():
    assert da.seed_stats([1.0, 4.0]) == {"mean": 2.5, "range": 3.0, "per_seed": [1.0, 4.0]}


def test_regimes_need_both_metrics_beyond_the_spread():
    result = da.aggregate(per_seed(), BUNDLE)
    regimes = {p["file"].split("/")[-1]: p["regime"] for p in result["points"]}
    assert regimes["dfr_none.safetensors"] == "hurts"
    assert regimes["dfr_blur-strong.safetensors"] == "helps"
    # FID 9.05 vs base 9.0 (ranges 0.1): within; FID2 8.05 vs 8.0: within
    assert regimes["dfr_noise-10.safetensors"] == "within the spread"
    assert result["base"]["fid"]["mean"] == pytest.approx(9.0)
    assert result["base"]["fid"]["range"] == pytest.approx(0.1)
    assert result["best"] == "σ 0.5–1 px"


def test_verdict_names_the_weak_and_the_strong_ends():
    result = da.aggregate(per_seed(), BUNDLE)
    text = da.verdict(result)
    assert "best: blur σ 0.5–1 px (helps against the base)" in text
    assert "blur: too weak (do not help): none, σ 0.01–0.02 px (paper)" in text
    assert "blur: too strong (worse than the best on both metrics): σ 1–2 px, σ 2–4 px" in text
    assert "noise: points that help: none" in text
