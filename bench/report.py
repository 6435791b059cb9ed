"""Paper-scale benchmark of a trained image bundle (MNIST, Fashion-MNIST): one command, every row.

    python -m bench.report --bundle checkpoints/mnist --n 5000 --seed 0

Every row draws the same n prior latents (balanced classes) and is measured against the whole
test split with the bundle's classifier (FID, KID, precision, recall, density, coverage,
memorisation ratio, accuracy). Groups: the methods at several solvers/NFE with noise-injection
baselines at matched extra NFE, an LFR α sweep, the DFR augmentation ablation, cross-model
transfer to the earlier base snapshot, and wall times. Writes bench/results/<bundle>.json,
<bundle>.md and <bundle>_{nfe,alpha,samples}.png. Each finished row is kept in
bench/results/.<bundle>_rows.json with a key of its inputs (n, seed, spec, the model files it uses), so
a killed run continues where it stopped and retraining one model recomputes only the rows that use
it (--fresh starts over).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.eval.baselines import SDEdit, prior_scale
from bfr_core.infra.checkpoint import atomic_write_bytes
from bfr_core.infra.data import load_dataset
from bfr_core.eval.evaluate import describe
from bfr_core.eval.metrics import image_metrics, image_reference
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.runner import run_rows

from bench.report_render import markdown, plots
from bench.report_rows import compute_order, refiner_files, rows, targets

CHUNK = 500  # a multiple of the 10 classes; on this CPU 500 images per call run ~2x faster than 2,000


class Runner:
    """Produces each row's samples once (rows with equal specs share them) and times the work."""

    def __init__(self, bundle_path: Path, n: int, seed: int):
        self.path = bundle_path
        snapshots = sorted(
            bundle_path.glob("snapshots/base_step*/base.safetensors"),
            key=lambda p: int(p.parent.name.removeprefix("base_step")),
        )
        self.early_base = snapshots[0] if snapshots else None  # the earliest, weakest base
        self.main = Pipeline(Bundle(bundle_path))
        self.pipes = {"main": self.main}
        self.z = self.main.prior(n, seed)
        self.labels = self.main.labels_for(n, None)
        self.n, self.seed = n, seed
        self.cache: dict[str, tuple[torch.Tensor, dict]] = {}
        self.base_images: dict[str, tuple[torch.Tensor, float]] = {}

    def inputs(self, spec: dict, specs_by_name: dict) -> list[Path]:
        """The model files behind a row: classifier, base, and the refiner(s) it runs."""
        files = [
            self.path / "classifier.safetensors",
            self.early_base if spec.get("base") == "early" else self.path / "base.safetensors",
        ]
        if "then_dfr" in spec:
            return (
                files
                + self.inputs(specs_by_name[spec["then_dfr"]], specs_by_name)
                + [self.path / "dfr.safetensors"]
            )
        if spec.get("prior_scale"):
            files.append(self.path / "latents.safetensors")
        return files + [self.path / f"{stem}.safetensors" for stem in refiner_files(spec).values()]

    def pipe(self, spec: dict) -> Pipeline:
        variants = {model: stem for model, stem in refiner_files(spec).items() if stem != model}
        key = "|".join([spec.get("base", "main"), *(f"{m}={s}" for m, s in variants.items())])
        if key not in self.pipes:
            bundle = self.main.bundle
            if spec.get("base") == "early":
                if self.early_base is None:
                    raise SystemExit(
                        f"{self.path}: no snapshots/base_step*/ "
                        "(train-base --snapshot-at) for the transfer rows"
                    )
                bundle = bundle.with_model("base", self.early_base)
            for model, stem in variants.items():
                bundle = bundle.with_model(model, self.path / f"{stem}.safetensors")
            self.pipes[key] = Pipeline(bundle)
        return self.pipes[key]

    def base(self, which: str) -> tuple[torch.Tensor, float]:
        """G(z) of the main or early base at its default settings, and the seconds it took."""
        if which not in self.base_images:
            t0 = time.perf_counter()
            rows = {"base": Settings(mode="none")}
            _, run = next(run_rows(self.pipe({"base": which}), rows, self.n, self.seed, CHUNK, z=self.z))
            self.base_images[which] = (run.x, time.perf_counter() - t0)
        return self.base_images[which]

    def samples(self, spec: dict, specs_by_name: dict) -> tuple[torch.Tensor, dict]:
        """(images, info): info = nfe, extra_nfe, solver, wall_s (all the work behind these images,
        the shared base included) and images × NFE per second."""
        pipe = self.pipe(spec)
        if (
            spec.get("mode") in ("lfr", "lfr+dfr") and spec.get("alpha") is None
        ):  # the default α is a value too
            spec = {**spec, "alpha": pipe.resolve(Settings(mode="lfr")).alpha}
        key = json.dumps(spec, sort_keys=True)
        if key in self.cache:
            return self.cache[key]
        base_nfe = pipe.bundle.sampling_default("base")["nfe"]
        if "then_dfr" in spec:
            x_src, src = self.samples(specs_by_name[spec["then_dfr"]], specs_by_name)
            t0 = time.perf_counter()
            s = pipe.resolve(Settings(mode="dfr"))
            res = pipe.refine("data", x_src, self.labels, s, torch.Generator().manual_seed(self.seed + 1))
            x, k = res.x, res.nfe
            info = {
                "nfe": src["nfe"] + k,
                "extra_nfe": src["extra_nfe"] + k,
                "solver": f"{src['solver']} + dfr {s.dfr_solver}x{k}",
                "earlier_work_s": src["wall_s"],
            }
        elif "sdedit" in spec:
            base_x, base_wall = self.base(spec.get("base", "main"))
            t0 = time.perf_counter()
            setting = SDEdit(spec["sdedit"], spec["solver"], spec["nfe"])
            x, k = setting.apply(pipe.bundle.models["base"], base_x, self.labels, self.seed)
            info = {
                "nfe": base_nfe + k,
                "extra_nfe": k,
                "earlier_work_s": base_wall,
                "solver": f"base rk4x{base_nfe} + sdedit t*={spec['sdedit']} {spec['solver']}x{k}",
            }
        else:
            fields = {
                k: v for k, v in spec.items() if k not in ("base", "prior_scale", "lfr_file", "dfr_file")
            }
            scale = None
            if spec.get("prior_scale"):  # G(s·z) with s the RMS of the cached inverted latents
                if pipe.bundle.latents is None:
                    raise SystemExit(f"{self.path}: no latents.safetensors for the prior-rescaling row")
                scale = prior_scale(pipe.bundle.latents["z"])
            z = self.z if scale is None else self.z * scale
            # LFR generates from z' instead of z (G(z) is then not an input), and a rescaled prior from s·z
            reuses_base = fields["mode"] in ("none", "dfr") and scale is None
            base_x, base_wall = self.base(spec.get("base", "main")) if scale is None else (None, 0.0)
            t0 = time.perf_counter()
            _, run = next(
                run_rows(pipe, {"row": Settings(**fields)}, self.n, self.seed, CHUNK, z=z, base=base_x)
            )
            x = run.x
            info = {
                "nfe": run.nfe["base"] + run.extra_nfe,
                "extra_nfe": run.extra_nfe,
                "solver": describe(run.settings, run.nfe),
                "earlier_work_s": base_wall if reuses_base else 0.0,
                **({"prior_scale": round(scale, 4)} if scale is not None else {}),
            }
        info["wall_s"] = round(info.pop("earlier_work_s") + time.perf_counter() - t0, 3)
        info["images_x_nfe_per_s"] = round(self.n * info["nfe"] / info["wall_s"])
        self.cache[key] = (x, info)
        return x, info


def file_digest(path: Path) -> bytes:
    st = path.stat()
    return _digest(path, st.st_mtime_ns, st.st_size)


@functools.cache
def _digest(path: Path, mtime_ns: int, size: int) -> bytes:  # read each file once while it is unchanged
    return hashlib.sha256(path.read_bytes()).digest()


def row_key(runner: "Runner", spec: dict, specs_by_name: dict) -> str:
    """What a row's numbers depend on: n, seed, its spec and the bytes of every model file it uses.
    A kept row is reused only while this matches, so retraining one refiner recomputes its rows alone."""
    h = hashlib.sha256(json.dumps([runner.n, runner.seed, spec], sort_keys=True).encode())
    for f in sorted(set(runner.inputs(spec, specs_by_name))):
        h.update(f.name.encode() + file_digest(f))
    return h.hexdigest()[:16]


def kept_rows_of(path: Path, keys: dict) -> dict:
    """Rows of one kept file whose inputs still match (``keys``: row name -> row_key)."""
    if not path.exists():
        return {}
    rows = json.loads(path.read_text()).get("rows", {})
    return {name: row for name, row in rows.items() if name in keys and row.get("inputs") == keys[name]}


def kept_rows(out_dir: Path, name: str, keys: dict) -> dict:
    """Rows finished by earlier (possibly interrupted) runs or by workers, for these exact inputs."""
    done = {}
    for f in sorted(out_dir.glob(f".{name}_rows*.json")):
        done.update(kept_rows_of(f, keys))
    return done


def run_workers(argv: list[str], workers: int) -> None:
    """Split the row groups over ``workers`` processes with one share of the threads each. Measured
    on the 2-core machine: this does *not* pay for batched sampling (memory-bound; two one-thread
    workers gave ~165 images × NFE/s each vs ~350 for one two-thread process), so keep 1 there."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // workers))}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.report", *argv, "--worker", f"{k}/{workers}"], env=env, cwd=ROOT
        )
        for k in range(workers)
    ]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a worker failed; rerun the same command to continue from the rows already kept")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="ignore rows kept from an interrupted run")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--workers", type=int, default=1, help="processes computing rows side by side")
    ap.add_argument("--report-only", action="store_true", help="write the report from the rows kept so far")
    ap.add_argument(
        "--worker", default=None, help=argparse.SUPPRESS
    )  # "k/W": compute group share k of W, then exit
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    out_dir, name = args.out_dir, args.bundle.name
    stem = out_dir / name
    if args.fresh and args.worker is None:
        for f in out_dir.glob(f".{name}_rows*.json"):
            f.unlink()
    table = rows()
    if args.workers > 1 and args.worker is None:
        run_workers(
            [
                "--bundle",
                str(args.bundle),
                "--n",
                str(args.n),
                "--seed",
                str(args.seed),
                "--out-dir",
                str(out_dir),
            ],
            args.workers,
        )
    share = None
    if args.worker is not None:
        k, w = map(int, args.worker.split("/"))
        groups = list(dict.fromkeys(g for g, _, _ in table))
        share = {g for i, g in enumerate(groups) if i % w == k}
    partial = out_dir / (
        f".{name}_rows.{args.worker.split('/')[0]}.json" if args.worker else f".{name}_rows.json"
    )
    runner = Runner(args.bundle, args.n, args.seed)
    ds = load_dataset(runner.main.bundle.dataset)
    specs = {row: spec for _, row, spec in table}
    missing = {
        row: [str(f) for f in runner.inputs(spec, specs) if not f.is_file()] for row, spec in specs.items()
    }
    missing = {row: files for row, files in missing.items() if files}
    for row, files in missing.items():
        print(f"skipping row {row!r}: {', '.join(files)} not in the bundle")
    keys = {row: row_key(runner, spec, specs) for row, spec in specs.items() if row not in missing}
    done = kept_rows(out_dir, name, keys)
    todo = (
        []
        if args.report_only
        else sorted(
            (
                r
                for r in table
                if r[1] not in done and r[1] not in missing and (share is None or r[0] in share)
            ),
            key=compute_order,
        )
    )

    @functools.cache
    def reference():
        t0 = time.perf_counter()
        ref = image_reference(runner.main.bundle.models["classifier"], ds.x_test, ds.x_train)
        print(f"reference features and radii: {time.perf_counter() - t0:.1f} s")
        return ref

    mine = {}
    for group, row, spec in tqdm(todo, desc=f"rows{' ' + args.worker if args.worker else ''}"):
        x, info = runner.samples(spec, specs)
        m = image_metrics(reference(), x, runner.labels)
        mine[row] = {
            "group": group,
            **m,
            **info,
            **({"alpha": spec["alpha"]} if spec.get("alpha") is not None else {}),
            "inputs": keys[row],
        }
        atomic_write_bytes(json.dumps({"rows": {**kept_rows_of(partial, keys), **mine}}).encode(), partial)
        tqdm.write(
            f"{row:42s} fid {m['fid']:8.3f}  NFE {info['nfe']} (+{info['extra_nfe']})  {info['wall_s']} s"
        )
    if args.worker is not None:
        return
    done = {**done, **mine}
    done = {row: done[row] for _, row, _ in table if row in done}  # table order; --report-only may lack some
    real = ds.x_train[: args.n]
    done["real training images"] = {
        "group": "reference",
        **image_metrics(reference(), real, ds.y_train[: args.n]),
        "nfe": 0,
        "extra_nfe": 0,
        "solver": "real training images",
        "wall_s": 0.0,
    }
    build = args.bundle / "build_times.json"
    result = {
        "command": "python -m bench.report " + " ".join(argv),
        "bundle": str(args.bundle),
        "n": args.n,
        "seed": args.seed,
        "test_images": len(ds.x_test),
        "threads": torch.get_num_threads(),
        "workers": args.workers,  # rows' wall_s: each worker had threads/workers
        "rows": done,
        "targets": targets(done),
        "missing_rows": missing,
        "build_times_s": json.loads(build.read_text()) if build.exists() else None,
        "models": {
            k: {f: v.get(f) for f in ("steps", "wall_s", "command")}
            for k, v in runner.main.bundle.meta.items()
        },
    }
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(markdown(result))
    small = Runner(args.bundle, 50, args.seed)  # the picture needs 50 samples, not n
    show = {
        row: small.samples(specs[row], specs)[0]
        for row in (
            "base",
            "LFR rk4 x1 (paper)",
            "LFR reflow euler x1 (ours)",
            "DFR rk4 x1 (paper)",
            "LFR rk4 x1 -> DFR rk4 x1",
        )
    }
    plots(result, stem, show)
    print(markdown(result))


if __name__ == "__main__":
    main()
