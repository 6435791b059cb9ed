"""The CLI's training and inversion stages: refiner variants, reflow students, resumed and continued runs,
kept latents."""

import pytest
import torch

from bfr_core.bundle import Bundle
from bfr_core.cli.main import main
from cli_calls import cli


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
