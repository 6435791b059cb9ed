import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bfr_core.bundle import Bundle
import torch
from PIL import Image

from bfr_core.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def cli(*args) -> subprocess.CompletedProcess:
    """``python -m bfr_core --quiet ARGS`` run in this process (``main``), exit status and output captured:
    what a user sees, without an interpreter start per call (the entry point itself: the help test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["--quiet", *args])
        except SystemExit as e:  # argparse: --help, or a malformed command line
            rc = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def test_help_lists_every_stage():
    out = subprocess.run(
        [sys.executable, "-m", "bfr_core", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    for cmd in (
        "train-base",
        "train-classifier",
        "invert",
        "train-lfr",
        "reflow-lfr",
        "train-dfr",
        "sample",
        "evaluate",
    ):
        assert cmd in out


def test_sample_and_evaluate(tiny_bundle, tmp_path):
    png = tmp_path / "grid.png"
    assert main(["--quiet", "sample", "--bundle", str(tiny_bundle), "--n", "16", "--out", str(png)]) == 0
    assert Image.open(png).size[0] > 32
    out = tmp_path / "r.json"
    r = cli("evaluate", "--bundle", str(tiny_bundle), "--n", "100", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    assert rows["lfr"]["solver"] == "base rk4x20 + lfr rk4x4" and "fid" in rows["lfr+dfr"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["evaluate", "--bundle", "/nonexistent", "--out", "x.json"], "bundle directory not found"),
        (["train-base", "--dataset", "mnist", "--out", "/tmp/x", "--data-dir", "CORRUPT"], "cannot read"),
        (
            ["sample", "--bundle", "checkpoints/digits", "--mode", "lfr", "--out", "x.png", "--lfr-nfe", "6"],
            "not a multiple of 4",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(args, msg, tmp_path, monkeypatch):
    monkeypatch.delenv("BFR_DATA_DIR", raising=False)
    monkeypatch.chdir(ROOT)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    r = cli(*[str(tmp_path) if a == "CORRUPT" else a for a in args])
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_checkpoint_in_cli(tiny_bundle, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    (b / "lfr.safetensors").write_bytes(b"\x80\x04garbage")
    r = cli("sample", "--bundle", str(b), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "lfr.safetensors" in r.stderr and "Traceback" not in r.stderr


def test_kill_minus_9_then_resume(tmp_path):
    out = tmp_path / "moons"
    args = [
        sys.executable,
        "-m",
        "bfr_core",
        "--quiet",
        "train-base",
        "--dataset",
        "moons",
        "--out",
        str(out),
        "--steps",
        "400",  # the kill lands at the first save (step 20), with 380 steps (~1 s) still to go
        "--save-every",
        "20",
    ]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / ".state" / "base.pt"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert state.exists(), "no checkpoint was written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "base.safetensors").exists()
    r = cli(*args[4:], "--resume")  # the resume runs here: only the killed run needs a process of its own
    assert r.returncode == 0, r.stderr
    meta = json.loads(
        __import__("safetensors").safe_open(str(out / "base.safetensors"), "pt").metadata()["bfr"]
    )
    assert meta["steps"] == 400 and "--resume" in meta["command"]
    assert not state.exists()


def test_train_dfr_variant_name(tiny_bundle):
    """--name writes a variant beside the bundle's models; the bundle itself ignores it."""
    r = cli(
        "train-dfr",
        "--bundle",
        str(tiny_bundle),
        "--pool",
        "64",
        "--steps",
        "3",
        "--name",
        "ablation/dfr_none",
        "--blur-p",
        "0",
    )
    assert r.returncode == 0, r.stderr
    from bfr_core.infra.checkpoint import load_model

    _, meta = load_model(tiny_bundle / "ablation" / "dfr_none.safetensors")
    assert (
        meta["augment"]["blur_p"] == 0
        and meta["steps"] == 3
        and "--name ablation/dfr_none" in meta["command"]
    )
    bad = cli("train-dfr", "--bundle", str(tiny_bundle), "--name", "../escape")
    assert bad.returncode == 2 and "a model name is letters" in bad.stderr


def test_train_lfr_variant_with_a_larger_ot_batch(tiny_bundle):
    """train-lfr takes the same --ot-batch and --name as train-dfr and records them."""
    r = cli(
        "train-lfr",
        "--bundle",
        str(tiny_bundle),
        "--alpha-max",
        "0.5",
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--ot-batch",
        "64",
        "--name",
        "ablation/lfr_ot64",
    )
    assert r.returncode == 0, r.stderr
    from bfr_core.infra.checkpoint import load_model

    _, meta = load_model(tiny_bundle / "ablation" / "lfr_ot64.safetensors")
    assert (meta["role"], meta["ot_batch"], meta["batch_size"], meta["steps"]) == ("lfr", 64, 16, 3)
    assert "--ot-batch 64" in meta["command"]
    _, shipped = load_model(tiny_bundle / "lfr.safetensors")
    assert shipped["ot_batch"] == shipped["batch_size"]  # no --ot-batch: OT within the batch, as before


def test_reflow_starts_from_the_teachers_weights_unless_told(tiny_bundle):
    """--init teacher copies the LFR's weights (one step at lr 1e-12 leaves them); scratch does not."""
    from bfr_core.infra.checkpoint import load_model

    teacher, _ = load_model(tiny_bundle / "lfr.safetensors")
    for init in ("teacher", "scratch"):
        r = cli(
            "reflow-lfr",
            "--bundle",
            str(tiny_bundle),
            "--pairs",
            "32",
            "--steps",
            "1",
            "--lr",
            "1e-12",
            "--init",
            init,
            "--name",
            f"ablation/reflow_{init}",
        )
        assert r.returncode == 0, r.stderr
        student, meta = load_model(tiny_bundle / "ablation" / f"reflow_{init}.safetensors")
        gap = max(
            float((a - b).abs().max())
            for a, b in zip(student.state_dict().values(), teacher.state_dict().values())
        )
        assert meta["init"] == init and meta["role"] == "lfr_reflow"
        _, teacher_meta = load_model(tiny_bundle / "lfr.safetensors")
        assert meta["teacher"]["command"] == teacher_meta["command"]
        assert meta["teacher"]["steps"] == teacher_meta["steps"]
        assert (gap < 1e-6) == (init == "teacher"), (init, gap)


def test_reflow_student_width_is_the_teachers_unless_told(tiny_bundle):
    """--channels sets a UNet student's width; on the digits bundle's MLP it is refused by name."""
    from bfr_core.refiners.lfr_reflow import student_config

    unet = {"kind": "unet_velocity", "shape": [1, 28, 28], "channels": 64, "num_classes": 10, "cond_dim": 0}
    assert student_config(unet, None) == unet and student_config(unet, 64) == unet
    assert student_config(unet, 32) == {**unet, "channels": 32}
    mlp = {"kind": "mlp_velocity", "shape": [64], "hidden": 256, "depth": 3, "num_classes": 10, "cond_dim": 0}
    with pytest.raises(ValueError, match="--channels: the LFR is a mlp_velocity"):
        student_config(mlp, 32)
    r = cli("reflow-lfr", "--bundle", str(tiny_bundle), "--pairs", "8", "--steps", "1", "--channels", "8")
    assert r.returncode == 2 and "--channels: the LFR is a mlp_velocity" in r.stderr, r.stderr


def test_quiet_and_data_dir_work_before_the_command():
    from bfr_core.cli.main import build_parser

    for argv in (
        ["--quiet", "--data-dir", "d", "invert", "--bundle", "b"],
        ["invert", "--quiet", "--data-dir", "d", "--bundle", "b"],
    ):
        args = build_parser().parse_args(argv)
        assert args.quiet is True and args.data_dir == "d"


def test_sample_writes_raw_npy_and_classifier2_trains(tiny_bundle, tmp_path):
    import numpy as np

    from bfr_core.pipeline import Pipeline, Settings

    out = tmp_path / "x.npy"
    assert (
        main(
            [
                "--quiet",
                "sample",
                "--bundle",
                str(tiny_bundle),
                "--n",
                "6",
                "--seed",
                "2",
                "--mode",
                "dfr",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    raw = np.load(out)
    st = Pipeline(tiny_bundle).run(6, 2, Settings(mode="dfr"))
    assert raw.dtype == np.float32 and raw.shape == (6, 1, 8, 8) and np.array_equal(raw, st.final.numpy())
    assert (
        main(
            [
                "--quiet",
                "train-classifier",
                "--bundle",
                str(tiny_bundle),
                "--name",
                "classifier2",
                "--arch",
                "mlp",
                "--noise",
                "0",
                "--max-shift",
                "0",
                "--seed",
                "777",
                "--steps",
                "20",
            ]
        )
        == 0
    )
    from bfr_core.infra.checkpoint import load_model

    model, meta = load_model(tiny_bundle / "classifier2.safetensors")
    assert meta["role"] == "classifier2" and meta["seed"] == 777 and meta["net"]["kind"] == "mlp_classifier"
    (tiny_bundle / "classifier2.safetensors").unlink()  # the session bundle stays as other tests expect it


def test_lfr_trains_on_latents_inverted_with_another_solver(tiny_bundle, tmp_path):
    """`invert --name` keeps a second set of latents beside the cached ones; `train-lfr --latents`
    trains on it and records which (the coarse-inversion study)."""
    import shutil

    from bfr_core.infra.checkpoint import load_model, load_tensors

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    coarse = ["--bundle", str(bundle), "--n", "200", "--solver", "euler", "--nfe", "2"]
    assert main(["--quiet", "invert", *coarse, "--name", "ablation/latents_euler2"]) == 0
    z, meta = load_tensors(bundle / "ablation" / "latents_euler2.safetensors")
    assert (meta["solver"], meta["nfe"], meta["n"]) == ("euler", 2, 200) and z["z"].shape == (200, 1, 8, 8)
    accurate, _ = load_tensors(bundle / "latents.safetensors")
    assert not torch.allclose(z["z"].float(), accurate["z"][:200].float(), atol=1e-2)
    argv = ["train-lfr", "--bundle", str(bundle), "--latents", "ablation/latents_euler2", "--steps", "5"]
    assert main(["--quiet", *argv, "--name", "ablation/lfr_coarse"]) == 0
    _, lfr_meta = load_model(bundle / "ablation" / "lfr_coarse.safetensors")
    assert lfr_meta["latents_file"] == "ablation/latents_euler2" and lfr_meta["latents"] == 200
    r = cli("train-lfr", "--bundle", str(bundle), "--latents", "ablation/missing", "--steps", "5")
    assert r.returncode == 2 and "missing.safetensors: file not found" in r.stderr


def test_a_latents_file_of_all_60000_mnist_images_is_read_though_a_model_that_size_is_refused(
    tiny_bundle, tmp_path
):
    """60,000 MNIST latents in fp16 are 94 MB, over the 64 MiB limit on checkpoints; `--latents`
    reads up to MAX_LATENTS_BYTES (a file this project writes locally), models keep the tight limit."""
    import shutil

    from bfr_core.infra.checkpoint import (
        MAX_FILE_BYTES,
        MAX_LATENTS_BYTES,
        CheckpointError,
        load_model,
        load_tensors,
    )
    from bfr_core.infra.checkpoint import save_tensors

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    n = MAX_FILE_BYTES // (64 * 2) + 1000  # fp16 8x8 latents just over the checkpoint limit
    z = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    big = bundle / "ablation" / "latents_big.safetensors"
    save_tensors({"z": z, "y": torch.arange(n) % 10}, {"role": "latents", "n": n}, big)
    assert MAX_FILE_BYTES < big.stat().st_size < MAX_LATENTS_BYTES
    with pytest.raises(CheckpointError, match=f"over the {MAX_FILE_BYTES} byte limit"):
        load_tensors(big)
    argv = ["train-lfr", "--bundle", str(bundle), "--latents", "ablation/latents_big", "--steps", "3"]
    assert main(["--quiet", *argv, "--name", "ablation/lfr_big"]) == 0
    assert load_model(bundle / "ablation" / "lfr_big.safetensors")[1]["latents"] == n


def test_an_interrupted_inversion_resumes_after_its_last_saved_chunk(tiny_bundle, tmp_path):
    """`invert --resume` continues from the state a killed run saved after each chunk and gives the
    same latents as an uninterrupted run; a state started with other settings is refused by name."""
    import shutil

    from bfr_core.infra.checkpoint import atomic_torch_save, load_tensors

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    argv = ["--quiet", "invert", "--bundle", str(bundle), "--n", "250", "--chunk", "100"]
    assert main([*argv, "--name", "ablation/latents_whole"]) == 0
    whole, _ = load_tensors(bundle / "ablation" / "latents_whole.safetensors")
    assert not (bundle / ".state" / "ablation" / "latents_whole.pt").exists()  # dropped once saved
    state = bundle / ".state" / "ablation" / "latents_cut.pt"
    settings = {"n": 250, "solver": "rk4", "nfe": 20, "chunk": 100}
    z_first = torch.full_like(whole["z"][:100], 7.0)  # a marker: resuming must keep, not redo, these rows
    atomic_torch_save({**settings, "done": 100, "wall_s": 5.0, "z": z_first}, state)
    assert main([*argv, "--name", "ablation/latents_cut", "--resume"]) == 0
    cut, meta = load_tensors(bundle / "ablation" / "latents_cut.safetensors")
    assert torch.equal(cut["z"][:100], z_first) and torch.equal(cut["z"][100:], whole["z"][100:])
    assert meta["wall_s"] >= 5.0
    atomic_torch_save({**settings, "chunk": 50, "done": 100, "wall_s": 5.0, "z": z_first}, state)
    r = cli(
        "invert",
        "--bundle",
        str(bundle),
        "--n",
        "250",
        "--chunk",
        "100",
        "--name",
        "ablation/latents_cut",
        "--resume",
    )
    assert r.returncode == 2 and "rerun without --resume" in r.stderr and "'chunk': 50" in r.stderr


def test_a_refiner_trained_further_starts_from_the_named_file_and_counts_its_steps(tiny_bundle, tmp_path):
    """`--init-from NAME` loads a finished refiner's weights instead of a fresh init (with a negligible
    learning rate the result stays that file's weights) and records the steps behind them; a file
    with another network is refused by name."""
    import shutil

    from bfr_core.infra.checkpoint import load_model

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    argv = ["--quiet", "train-lfr", "--bundle", str(bundle), "--alpha", "0.2"]
    assert main([*argv, "--steps", "4", "--name", "ablation/lfr_first"]) == 0
    further = [*argv, "--steps", "3", "--lr", "1e-12", "--init-from", "ablation/lfr_first"]
    assert main([*further, "--name", "ablation/lfr_further"]) == 0
    first, _ = load_model(bundle / "ablation" / "lfr_first.safetensors")
    grown, meta = load_model(bundle / "ablation" / "lfr_further.safetensors")
    assert (meta["init_from"], meta["init_steps"], meta["steps"]) == ("ablation/lfr_first", 4, 3)
    for (k, a), b in zip(first.state_dict().items(), grown.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    alpha_input = ["--alpha-max", "0.5", "--steps", "2", "--init-from", "ablation/lfr_first"]
    r = cli("train-lfr", "--bundle", str(bundle), *alpha_input, "--name", "ablation/lfr_alpha-cond")
    assert r.returncode == 2 and "lfr_first.safetensors: its network" in r.stderr


def test_every_dataset_has_training_defaults_and_an_unknown_one_is_refused():
    from bfr_core.cli.commands import STEPS, family
    from bfr_core.infra.data import DATASETS

    assert all(family(d) in STEPS for d in DATASETS)
    with pytest.raises(ValueError, match="no training defaults for dataset 'svhn'"):
        family("svhn")


def test_a_command_run_in_process_records_its_own_command_line(tiny_bundle):
    """``main(argv)`` called from another program (``bfr build``, the tests) records argv, not the host's."""
    from bfr_core.infra.checkpoint import load_model

    import re

    _, meta = load_model(tiny_bundle / "lfr.safetensors")  # built in one worker's folder, copied to this one
    want = r"python -m bfr_core --quiet train-lfr --bundle /\S+ --alpha-max 0.5 --alpha 0.2 --steps 60"
    assert re.fullmatch(want + " --save-every 20", meta["command"]), meta["command"]


def test_keep_latents_keeps_the_first_n_with_the_full_inversions_statistics(tiny_bundle, tmp_path, capsys):
    """`bfr keep-latents --n K` rewrites latents.safetensors with its first K rows, bit for bit; the bundle
    still loads, its metadata says how many were inverted; asking for more than there are is refused."""
    import shutil

    from bfr_core.infra.checkpoint import MAX_LATENTS_BYTES, load_tensors

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    before, meta = load_tensors(bundle / "latents.safetensors", MAX_LATENTS_BYTES)
    assert main(["keep-latents", "--bundle", str(bundle), "--n", "40"]) == 0
    after, kept = load_tensors(bundle / "latents.safetensors", MAX_LATENTS_BYTES)
    assert after["z"].equal(before["z"][:40]) and after["y"].equal(before["y"][:40])
    assert kept["n"] == 40 and kept["inverted"] == 300 and kept["round_trip_mae"] == meta["round_trip_mae"]
    assert len(Bundle(bundle).latents["z"]) == 40
    assert main(["keep-latents", "--bundle", str(bundle), "--n", "41"]) == 2
    assert "--n 41 is more than the 40 latents" in capsys.readouterr().err
    (bundle / "latents.safetensors").unlink()
    assert main(["keep-latents", "--bundle", str(bundle), "--n", "5"]) == 2
    assert "no cached latents to keep; run `bfr invert` first" in capsys.readouterr().err
