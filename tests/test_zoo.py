"""bench/zoo.py: rows under both metrics, paired relative changes, the 'helps' rule, kept results."""

import json

import pytest

from bench import zoo
from bfr_core.eval.evaluate import evaluate_bundle
from bfr_core.bundle import Bundle


def test_relative_changes_and_the_helps_rule():
    per_seed = {
        "0": {"base": {"fid": 10, "fid2": 20}, "lfr": {"fid": 5, "fid2": 15}},
        "1": {"base": {"fid": 8, "fid2": 16}, "lfr": {"fid": 6, "fid2": 12}},
    }
    assert zoo.relative_changes(per_seed, "lfr", "fid") == [-0.5, -0.25]
    assert zoo.helps(per_seed, "lfr") == "yes"  # mean −37.5% > 2 × std 17.7%; FID2 −25% ± 0
    per_seed["1"]["lfr"]["fid2"] = 17  # one seed gets worse under the second metric
    assert zoo.helps(per_seed, "lfr") == "no"


def test_zoo_rows_match_evaluate_and_are_kept(tiny_bundle, tmp_path):
    argv = [
        "--bundle",
        str(tiny_bundle),
        "--n",
        "60",
        "--seeds",
        "1",
        "--rows",
        "dfr",
        "lfr@base-euler8",
        "--out-dir",
        str(tmp_path),
    ]
    zoo.main(argv)
    kept = json.loads((tmp_path / "zoo.json").read_text())
    run = kept["runs"][f"{tiny_bundle.name}/n60/seed1"]
    assert set(run["rows"]) >= {"base", "dfr", "base-euler8", "lfr@base-euler8"}
    direct = evaluate_bundle(Bundle(tiny_bundle), 60, 1, rows={"dfr": zoo.ROWS["dfr"]}, progress=False)
    assert run["rows"]["dfr"]["fid"] == pytest.approx(direct["dfr"]["fid"])
    assert run["rows"]["lfr@base-euler8"]["solver"] == "base eulerx8 + lfr rk4x4"
    md = (tmp_path / "zoo.md").read_text()
    assert "| dfr | base rk4x20 + dfr rk4x4 | 4 |" in md
    assert run["commands"] == ["python -m bench.zoo " + " ".join(argv)]
    assert f"`{run['commands'][0]}`" in md.split("#### ")[1]  # under the table its rows came from
    mtime = (tmp_path / "zoo.json").stat().st_mtime_ns
    zoo.main(argv)  # nothing changed: every row is kept, nothing recomputed
    assert (tmp_path / "zoo.json").stat().st_mtime_ns == mtime


def test_a_retrained_refiner_recomputes_only_the_rows_that_run_it(tiny_bundle, tmp_path):
    """Each kept row carries the fingerprint of the files it uses (base, its refiners, the extractors)."""
    import shutil

    from bfr_core.cli.main import main as cli

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    argv = [
        "--bundle",
        str(bundle),
        "--n",
        "40",
        "--seeds",
        "2",
        "--rows",
        "lfr",
        "dfr",
        "--out-dir",
        str(tmp_path),
    ]
    zoo.main(argv)
    before = json.loads((tmp_path / "zoo.json").read_text())["runs"]["digits/n40/seed2"]["rows"]
    assert (
        cli(["--quiet", "train-dfr", "--bundle", str(bundle), "--pool", "40", "--steps", "3", "--seed", "9"])
        == 0
    )
    zoo.main(argv)
    after = json.loads((tmp_path / "zoo.json").read_text())["runs"]["digits/n40/seed2"]["rows"]
    assert after["lfr"] == before["lfr"]  # kept as it was
    timeless = lambda row: {k: v for k, v in row.items() if k != "wall_s"}  # noqa: E731
    assert timeless(after["base"]) == timeless(before["base"])  # solved again beside the DFR: same draws
    assert after["dfr"]["fingerprint"] != before["dfr"]["fingerprint"]
    assert after["dfr"]["fid"] != before["dfr"]["fid"]  # computed again with the new DFR
    assert zoo.row_models("lfr-reflow-euler1") == ("base", "lfr_reflow", "classifier", "classifier2")
    variant = ["--variant", "lfr=lfr.safetensors"]  # the bundle's own LFR named as a variant: the same files
    zoo.main([*argv, *variant])
    runs = json.loads((tmp_path / "zoo.json").read_text())["runs"]
    assert runs["digits[lfr=lfr]/n40/seed2"]["rows"]["dfr"] == after["dfr"]  # taken, not solved again


def test_verdicts_need_both_metrics_on_every_seed():
    rows = {
        "0": {"dfr-euler10": {"fid": 1, "fid2": 2}, "dfr-euler1": {"fid": 2, "fid2": 3}},
        "1": {"dfr-euler10": {"fid": 1, "fid2": 4}, "dfr-euler1": {"fid": 2, "fid2": 3}},
    }
    assert zoo.verdict(rows, "dfr-euler10", "dfr-euler1") == "mixed"
    rows["1"]["dfr-euler10"]["fid2"] = 2
    assert zoo.verdict(rows, "dfr-euler10", "dfr-euler1") == "reproduced"
    assert zoo.verdict(rows, "dfr-euler1", "dfr-euler10") == "refuted"
    assert zoo.verdict(rows, "lfr", "base") == "not measured"


def test_variant_verdicts_compare_two_runs_and_transfer_gains():
    row = lambda f, f2: {"fid": f, "fid2": f2}  # noqa: E731
    by_bundle = {
        "m[dfr=ablation/dfr_blur-strong], n = 10": {"0": {"dfr": row(5, 6)}},
        "m[dfr=ablation/dfr_none], n = 10": {"0": {"dfr": row(9, 7)}},
        f"m{zoo.TRANSFER}, n = 10": {"0": {"base": row(10, 10), "lfr": row(5, 9), "dfr": row(7, 8)}},
    }
    text = "\n".join(zoo.variant_lines(by_bundle))
    assert "a real blur (σ 0.5–1 px) beats no augmentation | reproduced" in text
    assert "DFR transfers to an earlier base better than LFR (relative FID change) | mixed" in text
    assert "the paper's blur" not in text  # that variant was not run
    # the run names the verdicts look for are the ones `--variant` produces
    assert zoo.variant_suffix(["base=snapshots/base_step1000/base.safetensors"]) == zoo.TRANSFER
    for _, (suffix, _), (other, _) in zoo.VARIANT_FINDINGS:
        assert suffix == zoo.variant_suffix([f"dfr={suffix[5:-1]}.safetensors"])
