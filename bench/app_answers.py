"""Fingerprints of the app's answers on fixed inputs, to show a refactoring changed no answer.

    python -m bench.app_answers --out bench/results/app_answers.json   # record (commit it)
    python -m bench.app_answers --compare bench/results/app_answers.json  # exits 1 naming each changed view

Each view is called directly on fixed seeds, and each output is recorded twice:
- ``exact``: sha256 of its bytes (a picture: its PNG file; a chart: its plotly JSON; a text: itself).
  Bit-identical answers give identical fingerprints — but only on the same torch build, CPU model and thread
  count, since float sums are ordered differently by other vector units or thread splits. The record names
  its ``environment`` (the test suite runs one thread per worker on 2 cores: record with OMP_NUM_THREADS=1).
- ``digest``: its form and its numbers, compared with a tolerance on any machine: a picture → its size and
  the mean grey level of each cell of an 8 × 8 grid per channel (within 0.5 levels); a chart or text → the
  text (a chart: its plotly JSON, arrays written out as numbers to 6 decimals) with every number replaced by
  ``#`` (equal) and the numbers (each within 1e-4 relative, or one unit of its last printed digit). A changed
  answer changes one or the other; float noise changes neither.
``tests/test_app_answers.py`` checks the committed record: the digest everywhere, the exact fingerprints
where the environment is the recorded one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import re
import sys

import numpy as np
import torch

from app.scrubber import step_forward
from app.tabs import inspector, latents, overrefine, overrefine_views, questions, refine, trajectories

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
    "stop rule mnist-leak": (questions.stop_rule_view, ("mnist-leak",)),
    "invertibility digits": (questions.invertibility_view, ("digits", "euler×2")),
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


NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:[eE][-+]?\d+)?")
GRID, PIXEL_TOLERANCE, RELATIVE_TOLERANCE = 8, 0.5, 1e-4


def unpacked(obj):
    """``obj`` with every array plotly packed as base64 (``{"bdata", "dtype", "shape"}``) written as a list
    of numbers, floats to 6 decimals: a chart's data then reads as numbers (the packed letters and digits
    mean nothing here)."""
    if isinstance(obj, dict) and "bdata" in obj and "dtype" in obj:
        a = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
        if "shape" in obj:
            a = a.reshape([int(n) for n in str(obj["shape"]).split(",")])
        return np.round(a, 6).tolist() if a.dtype.kind == "f" else a.tolist()
    if isinstance(obj, dict):
        return {k: unpacked(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [unpacked(v) for v in obj]
    return obj


def as_text(value) -> str:
    if hasattr(value, "to_json"):
        return json.dumps(unpacked(json.loads(value.to_json())), sort_keys=True)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def digest(value) -> dict | None:
    """An output's form and numbers (see the module's docstring); None stays None."""
    if value is None:
        return None
    if isinstance(value, str) and os.path.isfile(value):
        from PIL import Image

        with Image.open(value) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.float64)
        h, w = a.shape[:2]
        rows, cols = np.array_split(np.arange(h), GRID), np.array_split(np.arange(w), GRID)
        cells = [a[r[0] : r[-1] + 1, c[0] : c[-1] + 1].mean(axis=(0, 1)) for r in rows for c in cols]
        return {"form": f"picture {w}x{h}", "numbers": np.round(np.concatenate(cells), 3).tolist()}
    text = as_text(value)
    numbers = [[float(m.group(0)), len(m.group(1) or "")] for m in NUMBER.finditer(text)]
    form = hashlib.sha256(NUMBER.sub("#", text).encode()).hexdigest()[:16]
    return {"form": form, "numbers": numbers}


def digest_differs(old: dict | None, new: dict | None) -> str | None:
    """Why two digests differ beyond float noise, or None when they agree."""
    if old is None or new is None:
        return None if old is new else "one answer is empty"
    if old["form"] != new["form"] or len(old["numbers"]) != len(new["numbers"]):
        return f"form {old['form']} -> {new['form']} ({len(old['numbers'])} -> {len(new['numbers'])} numbers)"
    if old["form"].startswith("picture"):
        gap = np.abs(np.subtract(old["numbers"], new["numbers"])).max(initial=0.0)
        return None if gap <= PIXEL_TOLERANCE else f"grey levels differ by up to {gap:.2f}"
    for (a, places), (b, _) in zip(old["numbers"], new["numbers"]):
        allowed = max(RELATIVE_TOLERANCE * abs(a), 10.0**-places if places else 0.0)
        if abs(a - b) > allowed:
            return f"a number changed: {a} -> {b}"
    return None


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (Linux), else the platform's word for it."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor()


def environment() -> dict:
    """What bit-identity depends on: the torch build, the CPU (its model: two AVX512 CPUs of other makers
    gave other bits) and the intra-op threads (a sum split over more threads is added in another order)."""
    return {
        "torch": torch.__version__,
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }


def answers() -> dict[str, list]:
    """Each view's outputs as {"exact": fingerprint, "digest": digest}."""
    out = {}
    for view, (fn, args) in CALLS.items():
        r = fn(*args)
        if hasattr(r, "__next__"):  # a streaming view: its last answer
            r = list(r)[-1]
        outputs = r if isinstance(r, (tuple, list)) else [r]
        out[view] = [{"exact": fingerprint(x), "digest": digest(x)} for x in outputs]
    return out


def changes(before: dict, now: dict) -> list[str]:
    """'view: why' for every view whose answer changed: by digest always, by the exact fingerprint too
    when ``before`` was recorded in this very environment."""
    same_env = before.get("environment") == environment()
    found = []
    for view, outputs in before["answers"].items():
        got = now.get(view)
        if got is None or len(got) != len(outputs):
            found.append(f"{view}: {len(outputs)} outputs -> {0 if got is None else len(got)}")
            continue
        for i, (old, new) in enumerate(zip(outputs, got)):
            why = digest_differs(old["digest"], new["digest"])
            if why is None and same_env and old["exact"] != new["exact"]:
                why = "not bit-identical in the recorded environment"
            if why:
                found.append(f"{view} [output {i}]: {why}")
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the fingerprints here (JSON)")
    ap.add_argument("--compare", help="compare with fingerprints written earlier; exit 1 on any change")
    args = ap.parse_args(argv)
    record = {"environment": environment(), "answers": answers()}
    if args.out:
        with open(args.out, "w") as f:
            f.write(
                "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()) + "\n}\n"
            )
    if args.compare:
        with open(args.compare) as f:
            found = changes(json.load(f), record["answers"])
        print("unchanged" if not found else "changed:\n" + "\n".join(found))
        return 1 if found else 0
    if not args.out:
        json.dump(record, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
