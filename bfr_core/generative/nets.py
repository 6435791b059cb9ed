"""Velocity fields and classifiers.

Every velocity network has the signature ``net(t, x, y=None, cond=None) -> v`` with
``t`` of shape (B,), ``x`` of the data shape, ``y`` class indices (when ``num_classes > 0``)
and ``cond`` an extra (B, cond_dim) input such as the LFR mixing coefficient α.
Networks are built from a JSON-able config by :func:`build_net`, so a checkpoint can be
rebuilt without executing code.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features [sin(1000·t·f_k), cos(1000·t·f_k)], f_k = 10000^(-k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class Conditioning(nn.Module):
    """Embeds time, optional class label and optional extra inputs into one vector."""

    def __init__(self, dim: int, num_classes: int = 0, cond_dim: int = 0):
        super().__init__()
        self.dim, self.num_classes, self.cond_dim = dim, num_classes, cond_dim
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label = nn.Embedding(num_classes, dim) if num_classes > 0 else None
        self.extra = nn.Linear(cond_dim, dim) if cond_dim > 0 else None

    def forward(self, t, y=None, cond=None) -> torch.Tensor:
        emb = self.time(time_features(t, self.dim))
        if self.label is not None:
            if y is None:
                raise ValueError("this network is class-conditional: pass labels y")
            emb = emb + self.label(y)
        if self.extra is not None:
            if cond is None:
                raise ValueError(f"this network needs a conditioning input of width {self.cond_dim}")
            emb = emb + self.extra(cond)
        return emb


class MLPVelocity(nn.Module):
    """Residual MLP velocity field for vector data (toy 2-D points, flattened 8x8 digits)."""

    def __init__(self, shape, hidden=256, depth=3, num_classes=0, cond_dim=0):
        super().__init__()
        self.shape = tuple(shape)
        d = math.prod(self.shape)
        self.cond = Conditioning(hidden, num_classes, cond_dim)
        self.inp = nn.Linear(d, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, d))

    def forward(self, t, x, y=None, cond=None):
        emb = self.cond(t, y, cond)
        h = self.inp(x.flatten(1)) + emb
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h).view(x.shape)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


class UNetVelocity(nn.Module):
    """Small two-level UNet for images whose side is divisible by 4 (28×28×1 MNIST, 32×32×3 CIFAR-10)."""

    def __init__(self, shape, channels=32, num_classes=0, cond_dim=0):
        super().__init__()
        self.shape = tuple(shape)
        c, emb = channels, channels * 4
        cin = self.shape[0]
        self.cond = Conditioning(emb, num_classes, cond_dim)
        self.inp = nn.Conv2d(cin, c, 3, padding=1)
        self.down1 = ResBlock(c, c, emb)
        self.pool1 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2 = ResBlock(c, 2 * c, emb)
        self.pool2 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.mid = ResBlock(2 * c, 2 * c, emb)
        self.up2 = ResBlock(4 * c, 2 * c, emb)
        self.up1 = ResBlock(3 * c, c, emb)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, cin, 3, padding=1))

    def forward(self, t, x, y=None, cond=None):
        emb = self.cond(t, y, cond)
        h1 = self.down1(self.inp(x), emb)
        h2 = self.down2(self.pool1(h1), emb)
        h = self.mid(self.pool2(h2), emb)
        h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up2(torch.cat([h, h2], 1), emb)
        h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up1(torch.cat([h, h1], 1), emb)
        return self.out(h)


class FeatureClassifier(nn.Module):
    """A classifier whose ``body`` gives the features the metrics use and whose ``head`` the logits."""

    body: nn.Module
    head: nn.Module

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


class MLPClassifier(FeatureClassifier):
    """Classifier for small images; ``features`` is the penultimate layer used by the metrics."""

    def __init__(self, shape, hidden=256, feature_dim=64, num_classes=10):
        super().__init__()
        self.shape = tuple(shape)
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.shape), hidden),
            nn.SiLU(),
            nn.Linear(hidden, feature_dim),
            nn.SiLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)


class CNNClassifier(FeatureClassifier):
    """Small CNN for 28x28 images; ``features`` is the penultimate layer."""

    def __init__(self, shape, channels=32, feature_dim=128, num_classes=10):
        super().__init__()
        self.shape = tuple(shape)
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(self.shape[0], c, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * c, feature_dim),
            nn.SiLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)


NET_KINDS = {
    "mlp_velocity": MLPVelocity,
    "unet_velocity": UNetVelocity,
    "mlp_classifier": MLPClassifier,
    "cnn_classifier": CNNClassifier,
}


@torch.no_grad()
def init_weights(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every parameter from ``generator`` with PyTorch's default schemes, so that building a
    network never reads the process-wide random state (concurrent users stay reproducible).

    Linear/Conv: W ~ kaiming_uniform(a=√5), i.e. U(−1/√fan_in, 1/√fan_in), b ~ U(−1/√fan_in, 1/√fan_in);
    Embedding: N(0, 1); normalisation layers keep their deterministic ones/zeros.
    """
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(m.weight)[0])
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, generator=generator)
    return net


def build_net(config: dict, generator: torch.Generator | None = None) -> nn.Module:
    """Build a network from ``{"kind": ..., **kwargs}``; raise ValueError naming a bad field.

    With ``generator`` the initial weights come from it (see :func:`init_weights`); without, the
    caller loads weights next (checkpoints), and the throw-away initial values do not matter.
    """
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError("net config must be a dict with a 'kind' field")
    kind = config["kind"]
    if kind not in NET_KINDS:
        raise ValueError(f"unknown net kind {kind!r}; known: {', '.join(NET_KINDS)}")
    kwargs = {k: v for k, v in config.items() if k != "kind"}
    try:
        net = NET_KINDS[kind](**kwargs)
    except TypeError as e:
        raise ValueError(f"bad config for net kind {kind!r}: {e}") from None
    return net if generator is None else init_weights(net, generator)


def default_velocity_config(shape, num_classes=0, cond_dim=0, channels: int = 32) -> dict:
    """A sensible CPU-sized velocity net for the data shape (``channels``: UNet width, images only)."""
    if len(shape) == 3 and shape[-1] >= 16:
        return {
            "kind": "unet_velocity",
            "shape": list(shape),
            "channels": channels,
            "num_classes": num_classes,
            "cond_dim": cond_dim,
        }
    hidden = 128 if math.prod(shape) <= 2 else 256
    return {
        "kind": "mlp_velocity",
        "shape": list(shape),
        "hidden": hidden,
        "depth": 3,
        "num_classes": num_classes,
        "cond_dim": cond_dim,
    }


def default_classifier_config(shape, num_classes=10, arch: str | None = None) -> dict:
    """A CNN for 28x28 images and an MLP for small inputs, unless ``arch`` ("cnn" or "mlp") says.

    The MLP for 28x28 images is wider (512 → 128 features): the independent second metric.
    """
    if arch is None:
        arch = "cnn" if len(shape) == 3 and shape[-1] >= 16 else "mlp"
    if arch == "cnn":
        return {"kind": "cnn_classifier", "shape": list(shape), "num_classes": num_classes}
    if arch == "cnn-wide":  # 1.5× the channels, half the feature width
        return {
            "kind": "cnn_classifier",
            "shape": list(shape),
            "num_classes": num_classes,
            "channels": 48,
            "feature_dim": 64,
        }
    if arch != "mlp":
        raise ValueError(f"classifier arch must be 'cnn', 'cnn-wide' or 'mlp', got {arch!r}")
    wide = math.prod(shape) >= 256
    return {
        "kind": "mlp_classifier",
        "shape": list(shape),
        "num_classes": num_classes,
        **({"hidden": 512, "feature_dim": 128} if wide else {}),
    }
