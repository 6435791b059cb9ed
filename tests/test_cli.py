"""The CLI: its help, errors, sampling and evaluation, a kill and its resume, the files it reads."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from bfr_core.cli.main import main
from cli_calls import cli

ROOT = Path(__file__).resolve().parent.parent


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
