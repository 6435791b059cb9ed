"""Sampling and scoring a bundle from the command line: ``sample`` and ``evaluate``."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from bfr_core.infra.device import resolve_device
from bfr_core.infra import distributed
from bfr_core.eval.evaluate import evaluate_bundle
from bfr_core.infra.images import picture
from bfr_core.eval.inception import WEIGHTS_ENV
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings


# ----------------------------------------------------------------------------- commands


def settings_from(args) -> Settings:
    return Settings(
        mode=args.mode,
        base_solver=args.base_solver,
        base_nfe=args.base_nfe,
        alpha=args.alpha,
        lfr_variant=args.lfr_variant,
        lfr_solver=args.lfr_solver,
        lfr_nfe=args.lfr_nfe,
        dfr_variant=args.dfr_variant,
        dfr_solver=args.dfr_solver,
        dfr_nfe=args.dfr_nfe,
    )


def cmd_sample(args):
    """Draw --n samples; under torchrun each rank runs its rows of the batch (the same prior, labels
    and refiner noise as one process draws) and rank 0 gathers them and writes the file."""
    pipe = Pipeline(Bundle(args.bundle).flows_to(resolve_device(args.device)))
    rows = distributed.rows_of(args.n) if distributed.launched() else None
    st = pipe.run(args.n, args.seed, settings_from(args), label=args.label, rows=rows)
    final = distributed.gather_rows(st.final, args.n)
    if not distributed.is_main():
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":  # the raw samples, for anyone's own metric
        np.save(args.out, final.float().numpy())
    else:
        picture(final).save(args.out)
    print(f"wrote {args.out}: {args.n} samples, mode {st.settings.mode}, NFE {st.nfe}")


def bundle_on_device(args) -> Bundle:
    """The --bundle with its flow networks on --device (feature extractors and metrics stay on the CPU)."""
    return Bundle(args.bundle).flows_to(resolve_device(args.device))


def cmd_evaluate(args):
    t0 = time.perf_counter()
    bundle, device = bundle_on_device(args), resolve_device(args.device)
    inception = None
    if args.inception_weights or os.environ.get(WEIGHTS_ENV):
        inception = {
            "weights": args.inception_weights,
            "n_reference": args.inception_reference,
            "device": device,
        }
    rows = evaluate_bundle(
        bundle, args.n, args.seed, args.data_dir, progress=not args.quiet, inception=inception
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    for name, r in rows.items():
        score = f"fid {r['fid']:8.3f}" if "fid" in r else f"energy {r['energy']:.4f}"
        score += f"  fid2 {r['fid2']:8.3f}" if "fid2" in r else ""
        score += f"  fid-inception {r['fid_inception']:8.3f}" if "fid_inception" in r else ""
        mem = f"  memorisation {r['memorisation_ratio']:.3f}" if "memorisation_ratio" in r else ""
        print(f"{name:20s} {score}  extra NFE {r['extra_nfe']:3d} ({r['solver']}){mem}")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")


# ----------------------------------------------------------------------------- parser
# torchrun's own parser reads an abbreviated "--n" after "-m bfr_core" as its --nnodes/--nproc_per_node
# ("ambiguous option"), so every --n has a spelling torchrun leaves alone.
