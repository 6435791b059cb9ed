"""Training under torchrun (2 processes, gloo on CPU) follows one process, and resumes after a kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bfr_core.cli.main import main
from bfr_core.infra.checkpoint import load_model
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings

DIGITS = Path(__file__).resolve().parents[1] / "checkpoints" / "digits"

TOLERANCE = 1e-4  # float sums in another order (two half-batch gradients averaged) drift by ~1e-6 here


def bfr(processes: int, command: str) -> list[str]:
    """The command line of ``python -m bfr_core --quiet COMMAND``, under torchrun with 2+ processes."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return launcher + ["-m", "bfr_core", "--quiet", command]


def train(out, steps: int, processes: int, *extra, wait: bool = True):
    """Train a moons base; one process runs here (``main``), more under torchrun."""
    argv = ["--dataset", "moons", "--steps", str(steps), "--batch-size", "64", "--out", str(out), *extra]
    if processes == 1 and wait:
        assert main(["--quiet", "train-base", *argv]) == 0
        return load_model(out / "base.safetensors")
    cmd = bfr(processes, "train-base") + argv
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(
            cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)  # busy CPU: slow
    assert done.returncode == 0, done.stderr[-2000:]
    return load_model(out / "base.safetensors")


def kill_every_process_of(out: Path) -> None:
    """SIGKILL every process whose command line names ``out`` and wait until none is left.

    torchrun's workers may run in sessions of their own: killing the launcher's process group can leave
    them training on, writing into ``out`` while the resumed run starts (the cause of a flaky failure).
    """
    needle = str(out).encode()
    for _ in range(200):
        alive = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and needle in (proc / "cmdline").read_bytes():
                    alive.append(int(proc.name))
            except OSError:
                continue
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"processes of {out} survive SIGKILL: {alive}")


def max_difference(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_killed_two_process_run_resumes_where_it_ends_in_one_process(tmp_path):
    """Two processes at the same global batch and seed train what one process trains, and a two-process run
    killed at step 20 resumes to that same end: the resumed run is compared with an uninterrupted run in
    one process (two torchrun starts in all, each ~7 s here, instead of one more to compare one with two)."""
    whole, _ = train(tmp_path / "whole", 120, 1, "--save-every", "20")  # killed at step 20: 100 to go
    run = train(tmp_path / "killed", 120, 2, "--save-every", "20", wait=False)
    state = tmp_path / "killed" / ".state" / "base.pt"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline and run.poll() is None:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the launcher's group, as a crash would
    run.wait()
    kill_every_process_of(tmp_path / "killed")  # ranks torchrun started in sessions of their own
    assert state.exists() and not (tmp_path / "killed" / "base.safetensors").exists()
    # another --seed: a fresh start would end elsewhere; a resume restores weights and random state
    resumed, meta = train(tmp_path / "killed", 120, 2, "--save-every", "20", "--resume", "--seed", "1")
    assert meta["steps"] == 120 and max_difference(whole, resumed) < TOLERANCE
    assert meta["world_size"] == 2 and meta["command"].startswith("torchrun --standalone --nproc_per_node 2")
    assert not state.exists()  # the resume state is dropped once the model is saved
    assert torch.isfinite(next(iter(resumed.state_dict().values()))).all()


def test_commands_that_do_not_shard_refuse_to_run_under_torchrun(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["evaluate", "--bundle", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "evaluate runs as one process; under torchrun only" in capsys.readouterr().err


def sample(out: Path, processes: int, *settings) -> np.ndarray:
    """Draw 7 digits samples; one process runs here (``main``), two under torchrun."""
    argv = ["--bundle", str(DIGITS), "--count", "7", "--seed", "3", "--out", str(out), *settings]
    if processes == 1:
        assert main(["--quiet", "sample", *argv]) == 0
        return np.load(out)
    cmd = bfr(processes, "sample") + argv
    done = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out)


@pytest.mark.parametrize(
    "settings",
    [("--mode", "lfr+dfr"), ("--mode", "dfr", "--dfr-variant", "noise")],
    ids=["lfr+dfr", "noise-injection"],
)
def test_sample_under_two_processes_gathers_the_rows_one_process_draws(tmp_path, settings):
    """7 samples over 2 ranks (4 + 3 rows): the same prior, balanced labels and refiner noise, gathered
    in order; only the batch split differs, so the floats agree to the networks' rounding."""
    one = sample(tmp_path / "one.npy", 1, *settings)
    two = sample(tmp_path / "two.npy", 2, *settings)
    assert one.shape == two.shape == (7, 1, 8, 8)
    assert np.abs(one - two).max() < TOLERANCE


def test_sharded_pipeline_rows_equal_the_whole_batchs_rows():
    """In one process: running rows 2..5 of a batch of 6 gives those rows of the whole run (noise refiner
    included: its ε is the whole batch's ε at those rows)."""
    pipe = Pipeline(Bundle(DIGITS))
    s = Settings(mode="lfr+dfr", dfr_variant="noise")
    whole = pipe.run(6, 11, s)
    part = pipe.run(6, 11, s, rows=slice(2, 5))
    assert torch.equal(part.labels, whole.labels[2:5]) and torch.equal(part.z, whole.z[2:5])
    assert torch.allclose(part.final, whole.final[2:5], atol=1e-5)
    assert not torch.allclose(whole.final[2:5], whole.final[:3], atol=1e-2)  # rows differ from each other
