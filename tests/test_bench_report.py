"""bench/report.py end to end on the tiny digits bundle: every group, exact NFE, resume."""

import json
import shutil

from bench import report, report_rows
from bfr_core.cli.main import main as cli_main


def test_report_writes_every_group_and_resumes(tiny_bundle, tmp_path):
    bundle = tmp_path / "digits"  # a copy: this test retrains its DFR
    shutil.copytree(tiny_bundle, bundle)
    tiny_bundle, tmp_path = bundle, tmp_path / "results"
    for name, flags in (
        ("dfr_none", ["--blur-p", "0"]),
        ("dfr_noise", ["--blur-p", "0", "--noise-p", "0.3"]),
        ("dfr_blur-paper", []),
        ("dfr_blur-strong", ["--blur-sigma-min", "0.5", "--blur-sigma-max", "1"]),
        ("dfr_paper-recipe", []),
    ):
        assert (
            cli_main(
                [
                    "--quiet",
                    "train-dfr",
                    "--bundle",
                    str(tiny_bundle),
                    "--pool",
                    "64",
                    "--steps",
                    "3",
                    "--name",
                    f"ablation/{name}",
                    *flags,
                ]
            )
            == 0
        )
    assert (
        cli_main(
            [
                "--quiet",
                "train-lfr",
                "--bundle",
                str(tiny_bundle),
                "--alpha-max",
                "0.5",
                "--steps",
                "3",
                "--ot-batch",
                "512",
                "--name",
                "ablation/lfr_ot1024",
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "--quiet",
                "reflow-lfr",
                "--bundle",
                str(tiny_bundle),
                "--pairs",
                "64",
                "--steps",
                "3",
                "--init",
                "scratch",
                "--name",
                "ablation/lfr_reflow_scratch",
            ]
        )
        == 0
    )
    argv = ["--bundle", str(tiny_bundle), "--n", "60", "--out-dir", str(tmp_path)]
    report.main([*argv, "--workers", "2"])  # two processes, each a share of the groups, then merged
    result = json.loads((tmp_path / "digits.json").read_text())
    rows = result["rows"]
    assert {r["group"] for r in rows.values()} == {"methods", "alpha", "ablation", "transfer", "reference"}
    assert len(rows) == len(report.rows()) + 1
    expected_extra = {
        "base": 0,
        "LFR euler x1": 1,
        "LFR rk4 x1 (paper)": 4,
        "LFR reflow euler x1 (ours)": 1,
        "DFR euler x10": 10,
        "LFR rk4 x1 -> DFR rk4 x1": 8,
        "SDEdit t*=0.5 euler x10": 10,
        "early base + LFR -> DFR": 8,
        "LFR rk4 x1, OT over 1,024 pairs": 4,
        "rescaled prior -> DFR rk4 x1": 4,
        "LFR reflow euler x1, fresh init": 1,
    }
    for name, extra in expected_extra.items():
        assert (rows[name]["extra_nfe"], rows[name]["nfe"]) == (extra, 20 + extra), name
    for row in rows.values():
        assert {"fid", "kid", "precision", "recall", "density", "coverage", "nfe", "solver", "wall_s"} <= set(
            row
        )
    assert [rows[f"LFR rk4 x1, alpha={a}"]["alpha"] for a in report_rows.ALPHAS] == list(report_rows.ALPHAS)
    # the training-free rescaled prior: G(s·z) with s from the bundle's cached latents, no extra NFE
    from bfr_core.eval.baselines import prior_scale
    from bfr_core.bundle import Bundle

    rescaled = rows["prior rescaled to the latents' RMS (training-free)"]
    assert rescaled["prior_scale"] == round(prior_scale(Bundle(tiny_bundle).latents["z"]), 4) < 1
    assert (rescaled["extra_nfe"], rescaled["fid"] != rows["base"]["fid"]) == (0, True)
    # a variant file row runs that file, not the bundle's own LFR (or reflow)
    assert rows["LFR rk4 x1, OT over 1,024 pairs"]["fid"] != rows["LFR rk4 x1 (paper)"]["fid"]
    assert rows["LFR reflow euler x1, fresh init"]["fid"] != rows["LFR reflow euler x1 (ours)"]["fid"]
    # the default α (0.2) is the same computation as the α = 0.2 row of the sweep
    assert rows["LFR rk4 x1, alpha=0.2"]["fid"] == rows["LFR rk4 x1 (paper)"]["fid"]
    assert (
        result["targets"]["lfr_rk4x1_fid_cut"] == 1 - rows["LFR rk4 x1 (paper)"]["fid"] / rows["base"]["fid"]
    )
    for suffix in ("md", "_nfe.png", "_alpha.png", "_samples.png"):
        assert (tmp_path / f"digits{'.' if suffix == 'md' else ''}{suffix}").stat().st_size > 1000
    # an interrupted run keeps its finished rows: a second run reuses them instead of recomputing
    assert sorted(p.name for p in tmp_path.glob(".digits_rows*")) == [
        ".digits_rows.0.json",
        ".digits_rows.1.json",
    ]
    partial = tmp_path / ".digits_rows.0.json"
    kept = json.loads(partial.read_text())
    kept["rows"]["DFR euler x1"]["fid"] = -1.0
    kept["rows"]["LFR euler x1"]["fid"] = -2.0
    partial.write_text(json.dumps(kept))
    report.main(argv)
    rows = json.loads((tmp_path / "digits.json").read_text())["rows"]
    assert (rows["DFR euler x1"]["fid"], rows["LFR euler x1"]["fid"]) == (-1.0, -2.0)
    # retraining the DFR recomputes the rows that use it, and only those
    assert (
        cli_main(
            [
                "--quiet",
                "train-dfr",
                "--bundle",
                str(tiny_bundle),
                "--pool",
                "64",
                "--steps",
                "3",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    report.main(argv)
    rows = json.loads((tmp_path / "digits.json").read_text())["rows"]
    assert rows["LFR euler x1"]["fid"] == -2.0
    assert rows["DFR euler x1"]["fid"] > 0 and rows["DFR euler x1"]["fid"] != -1.0
    # a bundle without a variant's file: its row is skipped and named, the rest still reported
    (tiny_bundle / "ablation" / "dfr_none.safetensors").unlink()
    report.main(argv)
    result = json.loads((tmp_path / "digits.json").read_text())
    assert "DFR rk4 x1, aug: none" not in result["rows"] and len(result["rows"]) == len(report.rows())
    assert result["missing_rows"] == {
        "DFR rk4 x1, aug: none": [str(tiny_bundle / "ablation" / "dfr_none.safetensors")]
    }
    assert "DFR rk4 x1, aug: none (" in (tmp_path / "digits.md").read_text()


def test_targets_are_none_for_rows_not_run_and_an_error_for_rows_that_do_not_exist(monkeypatch):
    import pytest

    only_base = {"base": {"fid": 10.0, "extra_nfe": 0}, "LFR rk4 x1 (paper)": {"fid": 6.0, "extra_nfe": 4}}
    t = report_rows.targets(only_base)
    assert t["lfr_rk4x1_fid_cut"] == pytest.approx(0.4)
    assert t["dfr_rk4x1_fid_cut"] is None and t["best_sdedit_fid_at_extra_nfe"] is None
    renamed = [r for r in report.rows() if r[1] != "DFR rk4 x1 (paper)"]  # as if the row were renamed
    monkeypatch.setattr(report_rows, "rows", lambda: renamed)
    with pytest.raises(
        report_rows.UndefinedRow, match="'DFR rk4 x1 \\(paper\\)', which rows\\(\\) does not define"
    ):
        report_rows.targets(only_base)


def test_report_rows_are_the_pipelines_samples_on_the_same_draws(tiny_bundle):
    """The report's plain rows run through bfr_core.eval.runner.run_rows: the pipeline's own images, bit for
    bit, with the shared base reused and a rescaled prior drawn as G(s·z)."""
    import torch

    from bfr_core.eval.baselines import prior_scale
    from bfr_core.pipeline import Pipeline, Settings

    runner = report.Runner(tiny_bundle, 30, 3)
    specs = {name: spec for _, name, spec in report.rows()}
    pipe = Pipeline(tiny_bundle)
    z = pipe.prior(30, 3)
    for name, settings in (
        ("base", Settings(mode="none")),
        ("LFR rk4 x1 (paper)", Settings(mode="lfr", lfr_solver="rk4", lfr_nfe=4)),
        ("DFR euler x2", Settings(mode="dfr", dfr_solver="euler", dfr_nfe=2)),
    ):
        x, info = runner.samples(specs[name], specs)
        expected = pipe.run(30, 3, settings, z=z)
        assert torch.equal(x, expected.final), name
        assert info["nfe"] == sum(expected.nfe.values()), name
    x, info = runner.samples(specs[report_rows.RESCALED], specs)
    scale = prior_scale(pipe.bundle.latents["z"])
    assert torch.equal(x, pipe.run(30, 3, Settings(mode="none"), z=z * scale).final)
    assert info["prior_scale"] == round(scale, 4) and info["extra_nfe"] == 0
    from bfr_core.eval.baselines import SDEdit, sdedit

    base = pipe.run(30, 3, Settings(mode="none"), z=z)
    x, info = runner.samples(specs["SDEdit t*=0.5 rk4 x4"], specs)  # one SDEdit, the baselines' too
    g = torch.Generator().manual_seed(1000 + 3)
    assert torch.equal(x, sdedit(pipe.bundle.models["base"], base.base, base.labels, 0.5, "rk4", 4, g)[0])
    assert SDEdit(0.5, "rk4", 4).label == "SDEdit t*=0.5 rk4x1" and info["extra_nfe"] == 4
    x, _ = runner.samples(specs["LFR rk4 x1 -> DFR rk4 x1"], specs)  # DFR on the LFR row's images
    lfr_then_dfr = Settings(mode="lfr+dfr", lfr_solver="rk4", lfr_nfe=4)  # the DFR at its defaults
    assert torch.allclose(x, pipe.run(30, 3, lfr_then_dfr, z=z).final, atol=1e-6)


def test_inception_fid_table_gives_each_rows_paired_change_against_the_base():
    """bench.inception_fid's Markdown: mean ± sd over seeds, and each row's change against the base on the
    same draws (seed 0: 10 → 7 is −30 %, seed 1: 12 → 9 is −25 %: −27.50 ± 3.54 %)."""
    from bench.inception_fid import METRICS, markdown

    def row(v):
        return {**{m: v for m in METRICS}, "nfe": 20}

    seeds = {"0": {"base": row(10.0), "lfr": row(7.0)}, "1": {"base": row(12.0), "lfr": row(9.0)}}
    seeds["0"]["real-train"] = seeds["1"]["real-train"] = row(2.0)
    text = markdown(
        {"bundle": "b", "command": "c", "device": "cpu", "wall_s": 1, "n": 4, "note": "", "seeds": seeds}
    )
    assert "| base | 20 | 11.00 ± 1.41 |" in text and "| real-train | 20 | 2.00 ± 0.00 |" in text
    assert "| lfr | -27.50 ± 3.54 % |" in text and "| real-train | -" not in text
    # lower on both seeds by 3 on average, more than the base's sd 1.41: a gain that counts, on every metric
    assert "| lfr | " + " | ".join(["yes"] * len(METRICS)) + " |" in text
    seeds["0"]["lfr"], seeds["1"]["lfr"] = row(9.5), row(11.5)  # lower by 0.5 on both: within the spread
    text = markdown(
        {"bundle": "b", "command": "c", "device": "cpu", "wall_s": 1, "n": 4, "note": "", "seeds": seeds}
    )
    assert "| lfr | " + " | ".join(["no"] * len(METRICS)) + " |" in text


def test_inception_fid_scores_the_rows_asked_for_and_always_the_base():
    """--rows picks rows (the base, which every change is measured against, always runs); without it every
    row the bundle's files can run."""
    from bench.inception_fid import rows_for

    class NoDFR:  # a bundle without dfr.safetensors
        @staticmethod
        def has(name):
            return name != "dfr"

    assert list(rows_for(NoDFR(), {})[0]) == ["base", "lfr", "lfr-reflow-euler1"]
    assert list(rows_for(NoDFR(), {}, ["lfr-reflow-euler1"])[0]) == ["base", "lfr-reflow-euler1"]
    assert list(rows_for(NoDFR(), {}, ["dfr"])[0]) == ["base"]


def test_the_inception_bench_scores_each_seed_keeps_finished_seeds_and_scores_the_floor_once(
    tiny_bundle, tmp_path, monkeypatch
):
    """bench.inception_fid end to end on the tiny bundle, its 299-px network stood in for by the samples' mean
    (the port itself is tests/test_inception_real.py's): every seed's rows on the same draws, the real-data
    floor scored once per run, a rerun scoring only the seeds not yet written, --no-floor leaving it out."""
    import json

    import bench.inception_fid as bench

    scored = []

    class MeanInception:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, x):
            scored.append(len(x))
            return {"fid_inception_train": float(x.mean()), "fid_inception_test": float(x.mean()) + 1}

    monkeypatch.setattr(bench, "InceptionFID", MeanInception)
    out = tmp_path / "fid.json"
    argv = ["--bundle", str(tiny_bundle), "--n", "8", "--rows", "lfr", "--out", str(out)]
    bench.main([*argv, "--seeds", "0", "1"])
    first = json.loads(out.read_text())["seeds"]
    assert scored == [8] * 5  # the floor, then base and lfr for each seed
    assert set(first) == {"0", "1"} and all(
        set(rows) == {"base", "lfr", "real-train"} for rows in first.values()
    )
    assert (
        first["0"]["base"]["fid_inception_train"] != first["1"]["base"]["fid_inception_train"]
    )  # other draws
    assert first["0"]["real-train"] == first["1"]["real-train"]  # the same training images every seed
    bench.main([*argv, "--seeds", "0", "1", "2"])  # seeds 0 and 1 are kept: only seed 2 (and the floor) run
    assert (
        scored == [8] * 8
        and {k: v for k, v in json.loads(out.read_text())["seeds"].items() if k != "2"} == first
    )
    assert "| lfr |" in out.with_suffix(".md").read_text()
    bench.main([*argv[:-1], str(tmp_path / "no_floor.json"), "--seeds", "0", "--no-floor"])
    assert (
        scored == [8] * 10
        and "real-train" not in json.loads((tmp_path / "no_floor.json").read_text())["seeds"]["0"]
    )
