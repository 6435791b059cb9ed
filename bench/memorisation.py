"""Do refined samples copy training images? The memorisation ratio of LFR variants beside the base.

    python -m bench.memorisation --bundle checkpoints/mnist --n 500 --seed 0 \
        --lfr capacity/lfr_c64_gpu.safetensors

memorisation ratio = median over samples of the distance to the nearest *training* image, divided by
the same median for the test images (≈ 1: samples are as far from the training set as unseen real
images; ≪ 1: samples sit on training images). Reported with FID/FID2 and precision/recall against the
test split, for the base, the bundle's LFR and each ``--lfr`` file (a file of the bundle). Needs the
dataset on disk (the training images). Writes bench/results/memorisation_<bundle>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bfr_core.eval.evaluate import scorer_for
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("fid", "fid2", "precision", "recall", "memorisation_ratio")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--lfr", action="append", default=[], help="another LFR file of the bundle (repeat)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    bundle = Bundle(args.bundle)
    score = scorer_for(bundle)
    runs = {"base": (bundle, "none"), "lfr.safetensors": (bundle, "lfr")}
    runs.update({rel: (bundle.with_model("lfr", bundle.path / rel), "lfr") for rel in args.lfr})
    out = {"command": "python -m bench.memorisation " + " ".join(sys.argv[1:] if argv is None else argv)}
    out.update({"n": args.n, "seed": args.seed, "reference": "test split; training images for the ratio"})
    for name, (b, mode) in runs.items():
        st = Pipeline(b).run(args.n, args.seed, Settings(mode=mode))
        metrics = score(st.final, st.labels)
        out[name] = {k: metrics[k] for k in KEYS}
        print(name, {k: round(v, 3) for k, v in out[name].items()}, flush=True)
    path = ROOT / "bench" / "results" / f"memorisation_{args.bundle.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
