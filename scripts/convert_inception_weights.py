"""Convert pytorch-fid's FID Inception weights to the safetensors file `--inception-weights` reads.

    python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth inception_fid.safetensors

The source is read with ``torch.load(weights_only=True)``: tensors only, no arbitrary objects. Every
tensor the network needs must be there with its shape; the logits layer and batch-norm counters are
dropped. Nothing is downloaded: get the source file yourself (pytorch-fid's release "fid_weights").
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import shlex
import sys
from pathlib import Path

import torch

from bfr_core.checkpoint import save_tensors
from bfr_core.inception import FIDInception


def convert(src: Path, dst: Path) -> int:
    """Write the tensors of ``src`` that FIDInception uses to ``dst``; returns how many."""
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
        "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "command": shlex.join(["python", *sys.argv]),
    }
    save_tensors({k: state[k].float() for k in wanted}, meta, dst)
    return len(wanted)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("dst", type=Path, help="the .safetensors file to write")
    args = p.parse_args(argv)
    try:
        n = convert(args.src, args.dst)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {n} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
