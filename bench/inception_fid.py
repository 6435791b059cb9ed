"""Inception FID (the field's metric) beside the classifier metrics, per row and seed, for one bundle.

    python -m bench.inception_fid --bundle checkpoints/cifar10-cpu --n 2000 --seeds 0 1 2 --device cuda \
        [--candidate lfr=checkpoints/cifar10/ablation/lfr_alpha05.safetensors] [--rows lfr-reflow-euler1]
        [--no-floor] [--out bench/results/inception_fid_cifar10-cpu_n2000.json]

Every row runs on the same prior draws per seed (``runner.run_rows``) and is scored by
- ``fid_inception_train`` / ``fid_inception_test``: FID on the FID Inception network's pool features against
  the bundle's stored statistics of all training / all test images (``inception_reference.safetensors``,
  written by ``bfr inception-reference``; the paper's protocol is the training set);
- ``fid``, ``fid2``, ``kid``, …: the bundle's two classifiers against the test split
  (``evaluate.scorer_for``).
The row ``real-train`` scores n training images drawn at random the same way: the real-data floor of each
metric (a contiguous block is not: MNIST's file order groups its writers).
``--candidate ROLE=FILE`` adds the row ``ROLE@FILE`` with that refiner file in place of the bundle's.
Inception at 299 px is ~0.26 s per image on a 2-core CPU: run it on a GPU, or with a small --n.
Writes bench/results/inception_fid_<bundle>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.infra.device import resolve_device
from bfr_core.eval.evaluate import scorer_for
from bfr_core.eval.inception import REFERENCE_FILE, InceptionFID
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.runner import run_rows
from bfr_core.infra.dataset import random_rows
from bfr_core.views.stop_rule import paired_verdict

ROWS = {
    "base": Settings(mode="none"),
    "lfr": Settings(mode="lfr"),  # one RK4 step (4 NFE), the paper's setting
    "lfr-reflow-euler1": Settings(mode="lfr", lfr_variant="reflow"),
    "dfr": Settings(mode="dfr"),
    "lfr+dfr": Settings(mode="lfr+dfr"),
}
METRICS = ("fid_inception_train", "fid_inception_test", "fid", "fid2")


def rows_for(bundle: Bundle, candidates: dict[str, Path], only=None) -> tuple[dict, dict]:
    """The rows to score: ``ROWS`` the bundle can run (``only`` of them and the base when given), then
    each candidate refiner file as ``ROLE@STEM``; and the pipelines of the candidates."""
    wanted = set(ROWS) if only is None else {"base", *only}
    rows = {k: s for k, s in ROWS.items() if k in wanted and all(bundle.has(r.name) for r in s.refiners())}
    pipes = {}
    for role, path in candidates.items():
        name = f"{role}@{path.stem}"
        rows[name] = Settings(mode="lfr") if role == "lfr" else Settings(mode="dfr")
        pipes[name] = Pipeline(bundle.with_model(role, path))
    return rows, pipes


def mean_sd(values: list[float]) -> str:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.2f} ± {sd:.2f}"


def markdown(result: dict) -> str:
    seeds = list(result["seeds"])
    rows = list(result["seeds"][seeds[0]])
    lines = [
        f"# Inception FID and classifier FID: `{result['bundle']}`",
        "",
        f"`{result['command']}` ({result['device']}, {result['wall_s']} s). "
        f"n = {result['n']} per seed, seeds "
        f"{', '.join(seeds)}; mean ± sample sd over seeds. {result['note']}",
        "",
        "| row | NFE | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for row in rows:
        cells = []
        for m in METRICS:
            vals = [result["seeds"][s][row][m] for s in seeds if m in result["seeds"][s][row]]
            cells.append(mean_sd(vals) if vals else "–")
        lines.append(f"| {row} | {result['seeds'][seeds[0]][row]['nfe']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired change against the base on the same draws (mean ± sd over seeds):", ""]
    lines += ["| row | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for row in rows:
        if row in ("base", "real-train"):
            continue
        cells = []
        for m in METRICS:
            change = [
                100 * (result["seeds"][s][row][m] / result["seeds"][s]["base"][m] - 1)
                for s in seeds
                if m in result["seeds"][s][row]
            ]
            cells.append(mean_sd(change) + " %" if change else "–")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += verdict_lines(result["seeds"], rows)
    return "\n".join(lines) + "\n"


def verdict_lines(seeds: dict, rows: list[str]) -> list[str]:
    """Whether each row's gain over the base counts per metric (``stop_rule.paired_verdict``: lower on every
    seed, and by more on average than the base's spread over seeds)."""
    if len(seeds) < 2:
        return []
    lines = [
        "",
        "Counts as a gain (lower than the base on every seed, by more than the base's sd over seeds):",
        "",
    ]
    lines += ["| row | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    base = [seeds[s]["base"] for s in seeds]
    for row in rows:
        if row in ("base", "real-train"):
            continue
        rows_of_seeds = [seeds[s][row] for s in seeds]
        present = [m for m in METRICS if all(m in r for r in base + rows_of_seeds)]  # no fid2: one classifier
        v = paired_verdict(base, rows_of_seeds, present)
        cells = [("yes" if v[m]["counts"] else "no") if m in v else "–" for m in METRICS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--inception-weights", type=Path, default=None)
    p.add_argument("--candidate", action="append", default=[], metavar="ROLE=FILE")
    p.add_argument(
        "--rows", nargs="+", choices=list(ROWS), default=None, help="only these rows (the base always runs)"
    )
    p.add_argument("--no-floor", action="store_true", help="skip the real-data floor (n training images)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--render", action="store_true", help="only rewrite the Markdown from the stored JSON")
    args = p.parse_args(argv)
    if args.render:
        dest = args.out or ROOT / "bench" / "results" / f"inception_fid_{args.bundle.name}.json"
        dest.with_suffix(".md").write_text(markdown(json.loads(dest.read_text())))
        return
    t0 = time.perf_counter()
    device = resolve_device(args.device)
    bundle = Bundle(args.bundle).flows_to(device)
    candidates = dict((c.split("=", 1)[0], Path(c.split("=", 1)[1])) for c in args.candidate)
    rows, pipes = rows_for(bundle, candidates, args.rows)
    for pipe in pipes.values():
        pipe.bundle.flows_to(device)
    inception = InceptionFID(bundle.file(REFERENCE_FILE), args.inception_weights, str(device))
    score = scorer_for(bundle)
    dest = args.out or ROOT / "bench" / "results" / f"inception_fid_{args.bundle.name}.json"
    out = finished_seeds(dest, args.bundle.name, args.n)
    real_row = None
    pending = [seed for seed in args.seeds if str(seed) not in out]
    if score.ds is not None and pending and not args.no_floor:  # the real-data floor: n random train images
        drawn = random_rows(torch.arange(len(score.ds.x_train)), args.n, seed=1)
        real = score.ds.x_train[drawn], score.ds.y_train[drawn]
        real_row = {**inception(real[0]), **score(*real), "nfe": 0}
    for seed in args.seeds:
        if str(seed) in out:
            print(f"seed {seed}: kept from {dest.name}", flush=True)
            continue
        out[str(seed)] = {}
        for name, run in run_rows(Pipeline(bundle), rows, args.n, seed, chunk=500, pipes=pipes):
            out[str(seed)][name] = {
                **inception(run.x),
                **{k: v for k, v in score(run.x, run.labels).items() if isinstance(v, float)},
                "nfe": run.nfe["base"] + run.extra_nfe,
            }
            row = out[str(seed)][name]  # a bundle without a second classifier has no fid2
            print(seed, name, {k: round(row[k], 3) for k in METRICS if k in row}, flush=True)
        if real_row is not None:  # the same images every seed: scored once
            out[str(seed)]["real-train"] = real_row
        write(dest, args, device, t0, out)  # each finished seed is kept: a stopped run resumes after it


def finished_seeds(dest: Path, bundle: str, n: int) -> dict:
    """The seeds an earlier run of the same bundle and n already wrote to ``dest`` (none when it differs)."""
    if not dest.exists():
        return {}
    earlier = json.loads(dest.read_text())
    return earlier["seeds"] if (earlier.get("bundle"), earlier.get("n")) == (bundle, n) else {}


def write(dest: Path, args, device, t0: float, out: dict) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "bundle": args.bundle.name,
        "command": shlex.join(["python", "-m", "bench.inception_fid", *sys.argv[1:]]),
        "device": str(torch.cuda.get_device_name() if device.type == "cuda" else "cpu"),
        "n": args.n,
        "wall_s": round(time.perf_counter() - t0, 1),
        "note": "CIFAR-10 scores are against the JPEG copy (shared/data/SOURCES.md), not the official "
        "images.",
        "seeds": out,
    }
    dest.write_text(json.dumps(result, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {dest} (seeds {', '.join(out)})", flush=True)


if __name__ == "__main__":
    main()
