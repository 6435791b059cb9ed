"""Fingerprints of the app's answers on fixed inputs, to show a refactoring changed no answer.

    python -m bench.app_answers --out before.json        # on the old code
    python -m bench.app_answers --compare before.json    # on the new: exits 1 naming every changed view

Each view is called directly on fixed seeds; each output is hashed (a picture: its PNG file's bytes; a
chart: its plotly JSON; a text: itself). Bit-identical answers give identical fingerprints.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from app.scrubber import step_forward
from app.tabs import inspector, latents, overrefine, overrefine_views, refine, trajectories

CALLS = {  # view → (callback, arguments)
    "refine digits": (refine.refine, ("digits", 3, 8, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4)),
    "refine mnist reflow": (refine.refine, ("mnist", 3, 8, "any", "rk4", 20, "lfr", "reflow", 1, 0.2, 4)),
    "generate mnist": (refine.generate, ("mnist", 2, 8, "any", "rk4", 20)),
    "latents digits": (latents.latents, ("digits", 0.2, 4)),
    "inspect latent digits": (latents.inspect_latent, ("digits", 5, 0.2, 4)),
    "trajectory digits": (trajectories.trajectory, ("digits", 0, 8, 2, 0.5)),
    "inspect digits": (inspector.inspect_example, ("digits", 3, "rk4", 8, 0.2)),
    "overrefine digits": (overrefine.overrefine, ("digits", 0.2, "precomputed")),
    "equal NFE mnist": (overrefine_views.worth_nfe, ("mnist",)),
    "A/B digits": (overrefine_views.ab_compare, ("digits", "base +4", "lfr", 1)),
    "alpha map digits": (overrefine_views.alpha_map, ("digits",)),
    "overshoot digits": (overrefine_views.overshoot, ("digits", 0.2, 1.5)),
    "view buttons mnist": (overrefine_views.view_buttons, ("mnist",)),
    "scrubber step": (step_forward, (0.95,)),
}


def fingerprint(value) -> str | None:
    """sha256 (16 hex digits) of one output: a file's bytes, a figure's JSON, else its text."""
    if value is None:
        return None
    if isinstance(value, str) and os.path.isfile(value):
        with open(value, "rb") as f:
            data = f.read()
    elif hasattr(value, "to_json"):
        data = value.to_json().encode()
    elif isinstance(value, dict):
        data = json.dumps(value, sort_keys=True, default=str).encode()
    else:
        data = str(value).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def answers() -> dict[str, list]:
    out = {}
    for view, (fn, args) in CALLS.items():
        r = fn(*args)
        if hasattr(r, "__next__"):  # a streaming view: its last answer
            r = list(r)[-1]
        out[view] = [fingerprint(x) for x in (r if isinstance(r, (tuple, list)) else [r])]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the fingerprints here (JSON)")
    ap.add_argument("--compare", help="compare with fingerprints written earlier; exit 1 on any change")
    args = ap.parse_args(argv)
    now = answers()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(now, f, indent=1)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        changed = [v for v in before if before[v] != now.get(v)]
        print("identical" if not changed else "changed: " + ", ".join(changed))
        return 1 if changed else 0
    if not args.out:
        json.dump(now, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
