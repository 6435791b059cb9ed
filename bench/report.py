"""Paper-scale benchmark of a trained image bundle (MNIST, Fashion-MNIST): one command, every row.

    python bench/report.py --bundle checkpoints/mnist --n 5000 --seed 0

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

from bfr_core.baselines import prior_scale, sdedit
from bfr_core.checkpoint import atomic_write_bytes
from bfr_core.data import load_dataset
from bfr_core.evaluate import describe
from bfr_core.images import image_grid
from bfr_core.metrics import image_metrics, image_reference
from bfr_core.pipeline import Bundle, Pipeline, Settings
from bfr_core.refiners import refiner_for

ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
ABLATION = {
    "none": "ablation/dfr_none",
    "noise 30%, std 0.01": "ablation/dfr_noise",
    "blur 30%, σ 0.01–0.02 px (paper)": "ablation/dfr_blur-paper",
    "blur 30%, σ 0.5–1 px (stronger)": "ablation/dfr_blur-strong",
}
PAPER_RECIPE_DFR = (
    "ablation/dfr_paper-recipe"  # OT within the 128-pair batch and the paper's blur, same steps as dfr
)
WIDE_OT_LFR = "ablation/lfr_ot1024"  # OT over 1,024 pairs per step (as the shipped DFR), else as lfr
SCRATCH_REFLOW = (
    "ablation/lfr_reflow_scratch"  # reflow-lfr --init scratch, same pairs and steps as lfr_reflow
)
RESCALED = "prior rescaled to the latents' RMS (training-free)"


def lfr(solver, nfe, alpha=None, variant="ode"):
    return {"mode": "lfr", "lfr_solver": solver, "lfr_nfe": nfe, "alpha": alpha, "lfr_variant": variant}


def dfr(solver, nfe):
    return {"mode": "dfr", "dfr_solver": solver, "dfr_nfe": nfe}


FIRST = (
    "base",
    "LFR rk4 x1 (paper)",
    "DFR rk4 x1 (paper)",
    "LFR reflow euler x1 (ours)",
    "LFR euler x1",
    "LFR euler x10",
    "LFR rk4 x1 -> DFR rk4 x1",
)  # computed first; then the table order, α sweep and LFR euler x2/x5 last
LAST = ("alpha", "LFR euler x2", "LFR euler x5")


def compute_order(row: tuple[str, str, dict]) -> int:
    group, name, _ = row
    if name in FIRST:
        return 0
    return 2 if group in LAST or name in LAST else 1


def rows() -> list[tuple[str, str, dict]]:
    """(group, row name, spec). A spec is Settings fields for Pipeline.run, plus optional keys:
    ``base`` ("early" = the base snapshot), ``lfr_file`` / ``dfr_file`` (a refiner variant),
    ``sdedit`` (t*), ``prior_scale``
    ("latents": draw G(s·z), s the RMS of the cached inverted latents),
    ``then_dfr`` (apply the default DFR to another row's samples)."""
    out = [("methods", "base", {"mode": "none"})]
    out += [("methods", f"LFR euler x{k}", lfr("euler", k)) for k in (1, 2, 5, 10)]
    out += [
        ("methods", "LFR rk4 x1 (paper)", lfr("rk4", 4)),
        ("methods", "LFR rk4 x1, OT over 1,024 pairs", {**lfr("rk4", 4), "lfr_file": WIDE_OT_LFR}),
        ("methods", "LFR reflow euler x1 (ours)", lfr("euler", 1, variant="reflow")),
        (
            "methods",
            "LFR reflow euler x1, fresh init",
            {**lfr("euler", 1, variant="reflow"), "lfr_file": SCRATCH_REFLOW},
        ),
        ("methods", RESCALED, {"mode": "none", "prior_scale": "latents"}),
    ]
    out += [("methods", f"DFR euler x{k}", dfr("euler", k)) for k in (1, 2, 5, 10)]
    out += [
        ("methods", "DFR rk4 x1 (paper)", dfr("rk4", 4)),
        ("methods", "DFR rk4 x1, paper's training recipe", {**dfr("rk4", 4), "dfr_file": PAPER_RECIPE_DFR}),
        ("methods", "LFR rk4 x1 -> DFR rk4 x1", {"then_dfr": "LFR rk4 x1 (paper)"}),
        ("methods", "rescaled prior -> DFR rk4 x1", {"then_dfr": RESCALED}),
    ]
    out += [
        ("methods", f"SDEdit t*={t} {s} x{k}", {"sdedit": t, "solver": s, "nfe": k})
        for t, s, k in (
            (0.1, "euler", 1),
            (0.25, "euler", 4),
            (0.5, "rk4", 4),
            (0.25, "euler", 10),
            (0.5, "euler", 10),
        )
    ]
    out += [("alpha", f"LFR rk4 x1, alpha={a}", lfr("rk4", 4, alpha=a)) for a in ALPHAS]
    out += [
        ("ablation", f"DFR rk4 x1, aug: {k}", {**dfr("rk4", 4), "dfr_file": v}) for k, v in ABLATION.items()
    ]
    early = {"base": "early"}
    out += [
        ("transfer", "early base", {"mode": "none", **early}),
        ("transfer", "early base + LFR rk4 x1", {**lfr("rk4", 4), **early}),
        ("transfer", "early base + DFR rk4 x1", {**dfr("rk4", 4), **early}),
        ("transfer", "early base + LFR -> DFR", {"then_dfr": "early base + LFR rk4 x1", **early}),
    ]
    return out


def refiner_files(spec: dict) -> dict[str, str]:
    """The refiner models a row runs, each mapped to the file stem it loads: the bundle's own
    (``lfr``, ``lfr_reflow``, ``dfr``) or the variant named by ``lfr_file`` / ``dfr_file``."""
    out = {}
    if spec.get("mode") == "lfr":
        model = refiner_for("latent", spec.get("lfr_variant", "ode")).name
        out[model] = spec.get("lfr_file", model)
    if spec.get("mode") == "dfr":
        out["dfr"] = spec.get("dfr_file", "dfr")
    return out


CHUNK = 500  # a multiple of the 10 classes; on this CPU 500 images per call run ~2x faster than 2,000


def chunked(fn, *tensors):
    """fn over slices of CHUNK rows, outputs concatenated: (images, nfe) like the pipeline's calls."""
    outs = [fn(*(t[i : i + CHUNK] for t in tensors)) for i in range(0, len(tensors[0]), CHUNK)]
    return torch.cat([o[0] for o in outs]), outs[0][1]


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
            pipe = self.pipe({"base": which})
            x, _ = chunked(
                lambda z: (pipe.run(len(z), self.seed, Settings(mode="none"), z=z).base, None), self.z
            )
            self.base_images[which] = (x, time.perf_counter() - t0)
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

            def refine_data(a, y):
                res = pipe.refine("data", a, y, s, torch.Generator().manual_seed(self.seed + 1))
                return res.x, res.nfe

            x, k = chunked(refine_data, x_src, self.labels)
            info = {
                "nfe": src["nfe"] + k,
                "extra_nfe": src["extra_nfe"] + k,
                "solver": f"{src['solver']} + dfr {s.dfr_solver}x{k}",
                "earlier_work_s": src["wall_s"],
            }
        elif "sdedit" in spec:
            base_x, base_wall = self.base(spec.get("base", "main"))
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(1000 + self.seed)
            x, k = chunked(
                lambda a, y: sdedit(
                    pipe.bundle.models["base"], a, y, spec["sdedit"], spec["solver"], spec["nfe"], g
                ),
                base_x,
                self.labels,
            )
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
            # LFR generates from z' instead of z, and a rescaled prior from s·z
            reuses_base = fields["mode"] in ("none", "dfr") and scale is None
            base_x, base_wall = self.base(spec.get("base", "main")) if reuses_base else (z, 0.0)
            t0 = time.perf_counter()

            def run(z, b):
                st = pipe.run(
                    len(z), self.seed, Settings(**fields), z=z, base=b if reuses_base else None
                )  # b unused for LFR
                return st.final, st

            x, st = chunked(run, z, base_x)
            extra = sum(v for k, v in st.nfe.items() if k != "base")
            info = {
                "nfe": st.nfe["base"] + extra,
                "extra_nfe": extra,
                "solver": describe(st.settings, st.nfe),
                "earlier_work_s": base_wall,
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


class UndefinedRow(Exception):
    """A target reads a row name that ``rows()`` does not define (a typo or a renamed row)."""


class RowValues(dict):
    """Values by row name: a defined row not computed raises KeyError, an undefined one UndefinedRow."""

    def __missing__(self, name):
        if name not in {row_name for _, row_name, _ in rows()}:
            raise UndefinedRow(f"a target reads the row {name!r}, which rows() does not define")
        raise KeyError(name)


def targets(r: dict) -> dict:
    """The issue's targets from the rows; None where a defined row was not computed in this run (a
    --report-only run); UndefinedRow where a target names a row that does not exist."""
    fid = RowValues({name: row["fid"] for name, row in r.items()})
    lfr4, dfr4 = "LFR rk4 x1 (paper)", "DFR rk4 x1 (paper)"

    def best_sdedit(k):
        return min(v for name, v in fid.items() if name.startswith("SDEdit") and r[name]["extra_nfe"] == k)

    formulas = {
        "lfr_rk4x1_fid_cut": lambda: 1 - fid[lfr4] / fid["base"],
        "dfr_rk4x1_fid_cut": lambda: 1 - fid[dfr4] / fid["base"],
        "reflow_share_of_4nfe_gain": lambda: (
            (fid["base"] - fid["LFR reflow euler x1 (ours)"]) / (fid["base"] - fid[lfr4])
        ),
        "lfr_euler10_vs_euler1": lambda: fid["LFR euler x10"] - fid["LFR euler x1"],
        "lfr_euler10_vs_rk4x1": lambda: fid["LFR euler x10"] - fid[lfr4],
        "best_sdedit_fid_at_extra_nfe": lambda: {k: best_sdedit(k) for k in (1, 4, 10)},
        "bfr_fid_at_extra_nfe": lambda: {
            1: fid["LFR reflow euler x1 (ours)"],
            4: min(fid[lfr4], fid[dfr4]),
            10: min(fid["LFR euler x10"], fid["DFR euler x10"]),
        },
        "rescaled_prior_fid_cut": lambda: 1 - fid[RESCALED] / fid["base"],
        "transfer_lfr_cut": lambda: 1 - fid["early base + LFR rk4 x1"] / fid["early base"],
        "transfer_dfr_cut": lambda: 1 - fid["early base + DFR rk4 x1"] / fid["early base"],
    }
    out = {"lfr_target": 0.5, "dfr_target": 0.3, "reflow_target": 0.8}
    for key, formula in formulas.items():
        try:
            out[key] = formula()
        except KeyError:  # a row this target needs was not computed in this run
            out[key] = None
        except ValueError:  # no SDEdit row at that extra NFE in this run (min of nothing)
            out[key] = None
    return out


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    cols = ("fid", "kid", "precision", "recall", "density", "coverage", "memorisation_ratio", "accuracy")
    lines = [
        f"Command: `{result['command']}` — n = {result['n']} samples (seed {result['seed']}) vs the "
        f"{result['test_images']} test images, classifier-feature metrics (relative: not Inception FID).",
        "",
    ]
    for group, title in (
        ("methods", "Methods and noise-injection baselines"),
        ("alpha", "LFR α sweep (one net, α is an input)"),
        ("ablation", "DFR augmentation ablation (each variant trained for the same steps)"),
        (
            "transfer",
            "Cross-model transfer: refiners of the final base on the earlier base snapshot, not retrained",
        ),
        ("reference", "Floor: real training images"),
    ):
        lines += [
            f"### {title}",
            "",
            "| row | solver (per sample) | NFE (extra) | " + " | ".join(cols) + " | wall s |",
            "|" + "---|" * (len(cols) + 4),
        ]
        for name, row in result["rows"].items():
            if row["group"] == group:
                vals = " | ".join(f"{row[c]:.4f}" if c == "kid" else f"{row[c]:.3f}" for c in cols)
                lines.append(
                    f"| {name} | {row['solver']} | {row['nfe']} (+{row['extra_nfe']}) | "
                    f"{vals} | {row['wall_s']} |"
                )
        lines.append("")
    t = result["targets"]
    bfr, sde = t["bfr_fid_at_extra_nfe"] or {}, t["best_sdedit_fid_at_extra_nfe"] or {}
    lines += [
        "### Targets",
        "",
        f"- LFR rk4 x1 cuts FID by {fmt(t['lfr_rk4x1_fid_cut'], '.1%')} (target ≥ 50%); "
        f"DFR rk4 x1 by {fmt(t['dfr_rk4x1_fid_cut'], '.1%')} (≥ 30%).",
        f"- Reflow LFR at one Euler NFE keeps {fmt(t['reflow_share_of_4nfe_gain'], '.1%')} "
        "of the 4-NFE gain (target ≥ 80%).",
        f"- Over-refinement: LFR euler x10 minus euler x1 = {fmt(t['lfr_euler10_vs_euler1'], '+.3f')} FID; "
        f"minus rk4 x1 = {fmt(t['lfr_euler10_vs_rk4x1'], '+.3f')}.",
        "- Best FID at equal extra NFE, BFR vs SDEdit: "
        + ", ".join(f"+{k}: {fmt(bfr.get(k), '.3f')} vs {fmt(sde.get(k), '.3f')}" for k in (1, 4, 10))
        + ".",
        "- Yardstick, no training and no extra NFE: the prior rescaled to the latents' RMS cuts FID by "
        f"{fmt(t['rescaled_prior_fid_cut'], '.1%')}.",
        f"- Transfer to the earlier base: LFR cuts its FID by {fmt(t['transfer_lfr_cut'], '.1%')}, "
        f"DFR by {fmt(t['transfer_dfr_cut'], '.1%')}.",
        "",
    ]
    if result.get("missing_rows"):
        lines += [
            "Rows not computed, their model files are not in the bundle: "
            + "; ".join(f"{row} ({', '.join(files)})" for row, files in result["missing_rows"].items()),
            "",
        ]
    if result.get("build_times_s"):
        lines += [
            "### Wall time of each build stage on this machine (s)",
            "",
            "| " + " | ".join(result["build_times_s"]) + " |",
            "|" + "---|" * len(result["build_times_s"]),
            "| " + " | ".join(str(v) for v in result["build_times_s"].values()) + " |",
            "",
        ]
    return "\n".join(lines)


def plots(result: dict, stem: Path, grids: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for prefix, label in (("LFR euler x", "LFR, Euler"), ("DFR euler x", "DFR, Euler")):
        pts = sorted((row["extra_nfe"], row["fid"]) for name, row in r.items() if name.startswith(prefix))
        if pts:
            ax.plot(*zip(*pts), "o-", label=label)
    for name, marker in (
        ("LFR rk4 x1 (paper)", "s"),
        ("DFR rk4 x1 (paper)", "D"),
        ("LFR reflow euler x1 (ours)", "*"),
        ("LFR rk4 x1 -> DFR rk4 x1", "P"),
    ):
        if name in r:
            ax.plot(r[name]["extra_nfe"], r[name]["fid"], marker, markersize=9, label=name)
    sd = [(row["extra_nfe"], row["fid"]) for name, row in r.items() if name.startswith("SDEdit")] or [
        (None, None)
    ]
    ax.plot(*zip(*sd), "x", color="gray", markersize=8, label="SDEdit (noise injection)")
    ax.axhline(r["base"]["fid"], color="k", ls="--", lw=1, label="base")
    ax.axhline(r["real training images"]["fid"], color="g", ls=":", lw=1, label="real-data floor")
    ax.set(
        xlabel="extra NFE per sample",
        ylabel="classifier FID vs test (lower is better)",
        xscale="log",
        yscale="log",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{stem}_nfe.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    pts = [(row["alpha"], row["fid"]) for row in r.values() if row["group"] == "alpha"] or [(None, None)]
    ax.plot(*zip(*pts), "o-", label="LFR rk4 x1")
    ax.axhline(r["base"]["fid"], color="k", ls="--", lw=1, label="base")
    ax.set(xlabel="α (mixing coefficient)", ylabel="classifier FID vs test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{stem}_alpha.png", dpi=120)
    plt.close("all")
    cols = [image_grid(x, ncol=10, scale=2) for x in grids.values()]
    width = sum(c.width for c in cols) + 10 * (len(cols) - 1)
    from PIL import Image

    canvas = Image.new("L", (width, cols[0].height), 255)
    for i, c in enumerate(cols):
        canvas.paste(c, (i * (c.width + 10), 0))
    canvas.save(f"{stem}_samples.png")


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
        subprocess.Popen([sys.executable, __file__, *argv, "--worker", f"{k}/{workers}"], env=env)
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
        "command": "python bench/report.py " + " ".join(argv),
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
