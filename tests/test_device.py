"""--device and --bf16: the CPU path is untouched, the GPU path moves data right, bad requests are refused."""

import pytest
import torch

from bfr_core.cli.main import main
from bfr_core.infra import device as dev
from bfr_core.infra.checkpoint import load_model
from bfr_core.generative.flow import base_batches, train_flow
from bfr_core.infra.data import load_dataset
from bfr_core.generative.nets import MLPVelocity, init_weights
from bfr_core.generative.ode import flow_map
from bfr_core.generative.train import TrainConfig


def test_devices_resolve_and_a_missing_gpu_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.resolve_device("cpu") == dev.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device cuda: no CUDA device is available"):
        dev.resolve_device("cuda")
    with pytest.raises(ValueError, match="--device must be one of auto, cpu, cuda, got 'tpu'"):
        dev.resolve_device("tpu")
    with pytest.raises(ValueError, match="--bf16 needs a CUDA device"):
        dev.check_bf16(torch.device("cpu"), True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")  # under torchrun each rank takes its own GPU
    assert dev.resolve_device("auto") == dev.resolve_device("cuda") == torch.device("cuda", 1)


def test_the_cli_refuses_bf16_and_cuda_without_a_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusals apply to machines without one")
    for flags, message in (
        (["--bf16"], "--bf16 needs a CUDA device"),
        (["--device", "cuda"], "no CUDA device"),
    ):
        argv = ["--quiet", "train-base", "--dataset", "moons", "--steps", "2", "--out", str(tmp_path / "b")]
        assert main([*argv, *flags]) == 2 and message in capsys.readouterr().err


def tiny_run(device: str = "cpu", steps: int = 6):
    ds = load_dataset("moons")
    net = init_weights(MLPVelocity((2,), hidden=16, depth=1), torch.Generator().manual_seed(0))
    cfg = TrainConfig(steps=steps, lr=1e-2, seed=3, progress=False, device=device)
    return train_flow(net, base_batches(ds.x_train, ds.y_train, False), "ot", 0.0, 32, cfg).model


def test_the_gpu_path_moves_batches_and_outputs_without_changing_the_numbers(monkeypatch):
    """Forcing the GPU path's wrapper (OnDevice) on the CPU gives bit-identical training and sampling: the
    moves in and out are the only thing it adds, so on a GPU only the arithmetic's device differs."""
    plain = tiny_run()
    monkeypatch.setattr(
        "bfr_core.generative.train.on_device", lambda net, device, bf16=False: dev.OnDevice(net, device)
    )
    wrapped = tiny_run()
    for a, b in zip(plain.state_dict().values(), wrapped.state_dict().values()):
        assert torch.equal(a, b)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    out = dev.OnDevice(plain, torch.device("cpu"))(torch.zeros(50), z, None, None)
    assert torch.equal(out, plain(torch.zeros(50), z, None, None))
    assert flow_map(plain, z, nfe=4).x.device.type == "cpu"


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; none is lent to this project's CI"
)
def test_training_and_sampling_on_a_gpu_follow_the_cpu():
    cpu, gpu = tiny_run("cpu"), tiny_run("cuda")
    assert next(gpu.parameters()).device.type == "cpu"  # the trained model comes back to the CPU
    for a, b in zip(cpu.state_dict().values(), gpu.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    on_gpu = flow_map(gpu.cuda(), z, nfe=4).x
    assert on_gpu.device.type == "cpu" and torch.allclose(on_gpu, flow_map(cpu, z, nfe=4).x, atol=1e-4)


def cli_trained_moons(tmp_path, *flags):
    out = tmp_path / "b"
    argv = ["--quiet", "train-base", "--dataset", "moons", "--steps", "30", "--snapshot-at", "10"]
    assert main([*argv, "--out", str(out), *flags]) == 0
    return out


def test_a_model_records_where_it_was_trained(tmp_path):
    out = cli_trained_moons(tmp_path)
    for path in (out / "base.safetensors", out / "snapshots/base_step10/base.safetensors"):
        assert load_model(path)[1]["device"] == "cpu" and load_model(path)[1]["wall_s"] > 0
    assert load_model(out / "base.safetensors")[1]["world_size"] == 1


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; none is lent to this project's CI"
)
def test_the_cli_trains_on_a_gpu_with_bf16_and_the_files_load_on_the_cpu(tmp_path):
    out = cli_trained_moons(tmp_path, "--device", "cuda", "--bf16")
    for path in (out / "base.safetensors", out / "snapshots/base_step10/base.safetensors"):  # final, mid-run
        model, meta = load_model(path)
        assert next(model.parameters()).device.type == "cpu"
        assert meta["device"].startswith("cuda (") and meta["device"].endswith(", bf16)")


def test_a_bundle_moves_its_flows_and_keeps_its_metric_networks_on_the_cpu(tiny_bundle):
    from bfr_core.bundle import FEATURE_EXTRACTORS, Bundle

    bundle = Bundle(tiny_bundle).flows_to(torch.device("meta"))  # "meta": a device every machine has
    for name, model in bundle.models.items():
        expected = "cpu" if name in FEATURE_EXTRACTORS else "meta"
        assert next(model.parameters()).device.type == expected, name
    assert set(bundle.models) >= {"base", "classifier", "lfr", "dfr"}


STORED_VIEW_COMMANDS = (
    ["sweep", "--n", "40"],
    ["worth-nfe", "--n", "40"],
    ["latent-map", "--refined-points", "400"],
)


def test_the_stored_view_commands_take_a_device_and_refuse_a_missing_gpu(tiny_bundle, capsys, monkeypatch):
    from bfr_core.cli import main as cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in STORED_VIEW_COMMANDS:
        assert cli.main(["--quiet", *argv, "--bundle", str(tiny_bundle), "--device", "cuda"]) == 2
        assert "--device cuda: no CUDA device is available" in capsys.readouterr().err


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; none is lent to this project's CI"
)
def test_stored_views_computed_on_a_gpu_follow_the_cpu(tiny_bundle, tmp_path):
    import json
    import shutil

    from bfr_core.cli import main as cli

    stored = {}
    for device in ("cpu", "cuda"):
        bundle = tmp_path / device / "digits"
        shutil.copytree(tiny_bundle, bundle)
        (bundle / "latent_map.safetensors").unlink(missing_ok=True)
        for argv in STORED_VIEW_COMMANDS:
            assert cli.main(["--quiet", *argv, "--bundle", str(bundle), "--device", device]) == 0
        stored[device] = json.loads((bundle / "overrefine.json").read_text())["sweep"]
    cpu, gpu = stored["cpu"], stored["cuda"]
    assert gpu["base"] == pytest.approx(cpu["base"], rel=0.02)
    for curve in ("lfr", "dfr"):
        assert [k for k, _ in gpu[curve]] == [k for k, _ in cpu[curve]]
        assert [q for _, q in gpu[curve]] == pytest.approx([q for _, q in cpu[curve]], rel=0.02)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; none is lent to this project's CI"
)
def test_sample_on_a_gpu_gives_the_cpu_samples(tiny_bundle, tmp_path):
    import numpy as np

    out = {}
    for device in ("cpu", "cuda"):
        out[device] = tmp_path / f"{device}.npy"
        argv = ["sample", "--bundle", str(tiny_bundle), "--n", "16", "--out", str(out[device])]
        assert main(["--quiet", *argv, "--device", device]) == 0
    assert np.allclose(np.load(out["cpu"]), np.load(out["cuda"]), atol=1e-3)


def test_the_lease_packer_keeps_each_runs_4000_step_and_two_latest_files_written_since_the_marker(tmp_path):
    """scripts/gpu_lease_pack.py: what comes back from a GPU lease (at most 8 files of 16 MiB)."""
    import importlib.util
    import os
    import tarfile

    from bfr_core.infra.checkpoint import save_model
    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("pack", ROOT / "scripts" / "gpu_lease_pack.py")
    pack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack)
    net = MLPVelocity((2,), hidden=8, depth=1)
    config = {"kind": "mlp", "shape": [2], "hidden": 8, "depth": 1}
    old = tmp_path / "lfr_old.safetensors"
    save_model(net, config, {"steps": 10}, old)
    marker = tmp_path / "start"
    marker.touch()
    os.utime(old, (0, 0))  # written before the lease
    names = ["run_step2000", "run_step4000", "run_step8000", "run_step12000", "run"]
    for steps, name in zip((2000, 4000, 8000, 12000, 16000), names):
        save_model(net, config, {"steps": steps}, tmp_path / f"{name}.safetensors")
    save_model(net, config, {"steps": 4000}, tmp_path / "other_step4000.safetensors")
    out = tmp_path / "out"
    out.mkdir()
    pack.main(str(out), str(marker), str(tmp_path))
    packed = sorted(m for t in out.glob("*.tar") for m in tarfile.open(t).getnames())
    assert all(m.startswith(f"{tmp_path.parent.name}/{tmp_path.name}/") for m in packed)  # in checkpoints/
    packed = sorted(m.split("/")[-1] for m in packed)
    assert packed == sorted(
        [
            "run_step4000.safetensors",
            "run_step12000.safetensors",
            "run.safetensors",
            "other_step4000.safetensors",
        ]
    )


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="needs a CUDA GPU; none is lent to this project's CI"
            ),
        ),
    ],
)
def test_dfr_pool_and_reflow_pairs_are_drawn_on_the_training_device(tiny_bundle, tmp_path, device):
    """train-dfr draws its pool of base samples, reflow-lfr its teacher pairs, where they train."""
    import shutil

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    for argv in (
        ["train-dfr", "--pool", "64", "--name", "ablation/dfr_dev"],
        ["reflow-lfr", "--pairs", "32", "--name", "ablation/reflow_dev", "--snapshot-at", "1"],
    ):
        assert main(["--quiet", *argv, "--bundle", str(bundle), "--steps", "2", "--device", device]) == 0
    dfr_meta = load_model(bundle / "ablation/dfr_dev.safetensors")[1]
    assert dfr_meta["pool_device"] == device + (":0" if device == "cuda" else "")
    assert dfr_meta["device"].startswith(device)
    assert load_model(bundle / "ablation/reflow_dev.safetensors")[1]["device"].startswith(device)
    assert load_model(bundle / "ablation/reflow_dev_step1.safetensors")[1]["steps"] == 1
