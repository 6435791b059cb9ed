import pytest
import torch

from bfr_core.generative.nets import build_net, default_classifier_config, default_velocity_config


def test_unet_velocity_for_mnist_shapes_with_labels_and_alpha():
    net = build_net(default_velocity_config((1, 28, 28), num_classes=10, cond_dim=1))
    x, t = torch.randn(3, 1, 28, 28), torch.rand(3)
    v = net(t, x, torch.tensor([0, 5, 9]), torch.tensor([[0.1], [0.2], [0.3]]))
    assert v.shape == x.shape and torch.isfinite(v).all()
    loss = v.pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="pass labels y"):
        net(t, x)


def test_labels_and_conditioning_change_the_output():
    net = build_net(default_velocity_config((1, 8, 8), num_classes=10, cond_dim=1))
    x, t, c = torch.randn(2, 1, 8, 8), torch.rand(2), torch.zeros(2, 1)
    y = torch.tensor([1, 2])
    assert not torch.allclose(net(t, x, y, c), net(t, x, y.flip(0), c))
    assert not torch.allclose(net(t, x, y, c), net(t, x, y, c + 0.5))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_classifier_features(shape):
    clf = build_net(default_classifier_config(shape))
    x = torch.randn(4, *shape)
    assert clf(x).shape == (4, 10) and clf.features(x).dim() == 2


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="bad config for net kind 'mlp_velocity'"):
        build_net({"kind": "mlp_velocity", "shape": [2], "wings": 3})


def test_wide_cnn_classifier_is_the_independent_extractor_shape():
    import torch

    from bfr_core.generative.nets import build_net, default_classifier_config

    cfg = default_classifier_config((1, 28, 28), 10, "cnn-wide")
    net = build_net(cfg, torch.Generator().manual_seed(0))
    assert cfg["channels"] == 48 and net.features(torch.zeros(2, 1, 28, 28)).shape == (2, 64)
    with pytest.raises(ValueError, match="classifier arch must be"):
        default_classifier_config((1, 28, 28), 10, "resnet")
