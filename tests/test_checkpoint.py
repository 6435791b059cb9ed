import pickle
import shutil

import pytest
import torch

from bfr_core.infra.checkpoint import CheckpointError, load_model, load_train_state, save_model
from bfr_core.generative.nets import build_net, default_velocity_config
from bfr_core.bundle import Bundle

CONFIG = default_velocity_config((2,), num_classes=0)


class Payload:
    """Unpickling this runs code: it would create the file named in ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def saved(tmp_path):
    net = build_net(CONFIG)
    path = tmp_path / "base.safetensors"
    save_model(
        net, CONFIG, {"role": "base", "dataset": "moons", "sampling": {"solver": "rk4", "nfe": 8}}, path
    )
    return net, path


def test_round_trip_is_exact(saved):
    net, path = saved
    loaded, meta = load_model(path)
    x, t = torch.randn(4, 2), torch.rand(4)
    with torch.no_grad():
        assert torch.equal(loaded(t, x), net.eval()(t, x))
    assert meta["net"] == CONFIG and meta["dataset"] == "moons"


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "base.safetensors"
    bad.write_bytes(pickle.dumps({"w": Payload(str(marker))}))
    with pytest.raises(CheckpointError, match=r"base\.safetensors: not a valid safetensors"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_train_state(bad)  # torch.load(weights_only=True) refuses the payload too
    assert not marker.exists()


def test_truncated_file(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_model(path)


def test_wrong_shapes(saved, tmp_path):
    _, path = saved
    other = dict(CONFIG, hidden=64)
    small = tmp_path / "small.safetensors"
    save_model(build_net(other), CONFIG, {}, small)  # weights of a 64-wide net, config says 128
    with pytest.raises(CheckpointError, match="has shape"):
        load_model(small)


def test_unknown_net_kind(tmp_path):
    path = tmp_path / "x.safetensors"
    save_model(build_net(CONFIG), {"kind": "transformer"}, {}, path)
    with pytest.raises(CheckpointError, match="unknown net kind 'transformer'"):
        load_model(path)


def test_nan_weights_are_refused(tmp_path):
    net = build_net(CONFIG)
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    path = tmp_path / "nan.safetensors"
    save_model(net, CONFIG, {}, path)
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(path)


def test_empty_and_missing_bundle_dirs(tmp_path):
    with pytest.raises(CheckpointError, match="no base.safetensors"):
        Bundle(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        Bundle(tmp_path / "nope")


def test_bundle_with_mismatched_refiner(tiny_bundle, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    save_model(
        build_net(CONFIG), CONFIG, {"role": "dfr"}, b / "dfr.safetensors"
    )  # a 2-D net in a digits bundle
    with pytest.raises(CheckpointError, match=r"dfr.safetensors: data shape \[2\] differs"):
        Bundle(b)
