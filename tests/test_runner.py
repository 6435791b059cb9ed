import shutil

import torch

from bfr_core.cli.main import main
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.runner import run_rows


def test_rows_share_prior_draws_and_base_samples(tiny_bundle):
    pipe = Pipeline(tiny_bundle)
    rows = {
        "base": Settings(mode="none"),
        "dfr": Settings(mode="dfr"),
        "coarse": Settings(mode="none", base_solver="euler", base_nfe=2),
    }
    runs = dict(run_rows(pipe, rows, n=30, seed=4))
    assert list(runs) == list(rows)
    alone = pipe.run(30, 4, Settings(mode="dfr"))
    assert torch.equal(runs["dfr"].x, alone.final) and torch.equal(runs["dfr"].labels, alone.labels)
    assert torch.equal(runs["base"].x, alone.base)
    assert runs["dfr"].nfe == alone.nfe and runs["dfr"].extra_nfe == alone.nfe["dfr"] > 0
    # a row with its own base settings solves its own base from the same z
    coarse = pipe.run(30, 4, rows["coarse"])
    assert torch.equal(runs["coarse"].x, coarse.base) and runs["coarse"].nfe == {"base": 2}
    assert runs["coarse"].settings.base_solver == "euler" and runs["base"].wall_s >= 0


def test_chunks_and_candidate_pipelines(tiny_bundle, tmp_path):
    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "train-lfr", "--bundle", str(bundle), "--steps", "3", "--name", "lfr_short"]) == 0
    pipe = Pipeline(bundle)
    rows = {"lfr": Settings(mode="lfr"), "candidate": Settings(mode="lfr")}
    other = Pipeline(pipe.bundle.with_model("lfr", bundle / "lfr_short.safetensors"))
    whole = dict(run_rows(pipe, rows, n=40, seed=1))
    chunked = dict(run_rows(pipe, rows, n=40, seed=1, chunk=20, pipes={"candidate": other}))
    assert torch.allclose(whole["lfr"].x, chunked["lfr"].x, atol=1e-5)
    assert torch.equal(whole["lfr"].labels, chunked["lfr"].labels)  # 20 is a multiple of 10 classes
    by_candidate = other.run(40, 1, Settings(mode="lfr"))
    assert torch.allclose(chunked["candidate"].x, by_candidate.final, atol=1e-5)
    assert not torch.allclose(chunked["candidate"].x, whole["lfr"].x, atol=1e-3)


def test_given_draws_and_base_samples_are_used_as_they_are(tiny_bundle):
    """z and base passed in replace the seed's draws and the base solve; a length mismatch is refused."""
    import pytest

    pipe = Pipeline(tiny_bundle)
    z = pipe.prior(20, 2) * 0.5
    base = pipe.run(20, 2, Settings(mode="none"), z=z).base
    runs = dict(
        run_rows(pipe, {"base": Settings(mode="none"), "dfr": Settings(mode="dfr")}, 20, 2, z=z, base=base)
    )
    assert torch.equal(runs["base"].x, base)
    assert torch.equal(runs["dfr"].x, pipe.run(20, 2, Settings(mode="dfr"), z=z).final)
    with pytest.raises(ValueError, match="n = 10, but 20 prior draws and 20 base samples"):
        next(run_rows(pipe, {"base": Settings(mode="none")}, 10, 2, z=z, base=base))
