"""Over-refinement: quality as a function of refiner NFE, and how samples drift with NFE.

The paper reports that LFR gets worse with more steps (over-refinement) while DFR improves;
these helpers measure both on one batch so the claim can be checked rather than assumed.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import replace
from pathlib import Path

import torch

from bfr_core.infra.checkpoint import load_stored_measurement
from bfr_core.eval.evaluate import Scorer
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.runner import run_rows
from bfr_core.infra.checkpoint import CheckpointError, load_tensors

SWEEP_NFES = (1, 2, 3, 4, 6, 8, 10)
SWEEP_FILE = "overrefine.json"  # the curves measured when the bundle was built (``bfr sweep``)


def load_sweep(bundle) -> dict | None:
    """The bundle's stored NFE sweep, validated, or None when it has none."""

    def valid(stored):
        sweep = stored["sweep"]
        curves = all(
            all(isinstance(p, list) and len(p) == 2 for p in sweep[m]) for m in ("lfr", "dfr") if m in sweep
        )
        alpha = stored["alpha"] is None or isinstance(stored["alpha"], (int, float))
        return isinstance(sweep["base"], (int, float)) and curves and alpha

    return load_stored_measurement(bundle.path / SWEEP_FILE, valid, "NFE sweep")


def sibling_sweep(bundle, sibling, stages, n: int, seed: int, alpha: float | None) -> dict:
    """The stored sweep of ``sibling`` (a Bundle) when its curves of ``stages`` are this bundle's too.

    They are when the base and each of those refiners are byte-identical files (a bundle sharing them
    through ``shared.json``) and the draws match (n, seed; and α for an LFR curve): the solves would
    repeat the sibling's exactly. Anything else is a ValueError naming what differs.
    """
    for name in ("base", *stages):
        mine, theirs = bundle.file(name), sibling.file(name)
        if mine is None or theirs is None or file_sha256(mine) != file_sha256(theirs):
            raise ValueError(f"--same-as: {sibling.path.name}'s {name} is not this bundle's file")
    stored = load_sweep(sibling)
    if (
        stored is None
        or (stored["n"], stored["seed"]) != (n, seed)
        or any(m not in stored["sweep"] for m in stages)
    ):
        raise ValueError(
            f"--same-as: {sibling.path / SWEEP_FILE} has no such curves for --n {n} --seed {seed}"
        )
    if "lfr" in stages and stored["alpha"] != alpha:
        raise ValueError(f"--same-as: {sibling.path.name}'s LFR curve is at α {stored['alpha']}, not {alpha}")
    return stored


def file_sha256(path) -> str:
    """The file's SHA-256, hashed once per version of the file (its path, size and modification time)."""
    path = Path(path).resolve()
    st = path.stat()
    return _sha256_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lfr_fingerprint(bundle) -> str:
    """The first 16 hex digits of the bundle's LFR file's SHA-256: what stored views record, so a retrained
    LFR makes them stale."""
    return file_sha256(bundle.file("lfr"))[:16]


def same_metrics(a: dict, b: dict, rel: float = 1e-4) -> bool:
    """Equal keys, and every value equal to a relative ``rel`` (lists: element by element)."""

    def close(x, y) -> bool:
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(u, v) for u, v in zip(x, y))
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            return math.isclose(x, y, rel_tol=rel, abs_tol=1e-9)
        return x == y

    return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)


def merge_sweep(stored: dict, fresh: dict, stages) -> dict:
    """``stored`` sweep with the curves (and metric rows) of ``stages`` taken from ``fresh``.

    Both must be measured on the same draws (n, seed, α): the base rows must agree — to a relative 1e-4,
    since another thread count rounds the same solves differently in the last bits — or this is a ValueError.
    """
    if not same_metrics(stored["metrics"]["base"], fresh["metrics"]["base"]):
        raise ValueError("the stored sweep's base row differs from this run's: another n, seed or base")
    own = tuple(f"{m} " for m in stages)
    metrics = {k: v for k, v in stored["metrics"].items() if not k.startswith(own)}
    metrics.update({k: v for k, v in fresh["metrics"].items() if k.startswith(own)})
    return {**stored, **{m: fresh[m] for m in stages if m in fresh}, "metrics": metrics}


@torch.no_grad()
def nfe_sweep(
    pipe: Pipeline,
    score: Scorer,
    n: int = 500,
    seed: int = 0,
    nfes=SWEEP_NFES,
    alpha: float | None = None,
    progress=None,
    stages=("lfr", "dfr"),
    check_base=None,
) -> dict:
    """Quality of each refiner against its number of Euler steps (NFE = steps), on shared draws.

    ``stages`` limits the curves to some refiners (the base row is always measured, first);
    ``check_base(metrics)``, when given, sees the base row before any refiner row is solved (and may raise).

    Returns:
        {"metric": name, "base": q, "lfr": [(nfe, q)...], "dfr": [(nfe, q)...], "metrics": {...}}:
        q is ``score``'s primary metric (FID for images, energy distance for points); "metrics" holds
        every metric the scorer gives (e.g. ``fid2`` on the independent extractor) by row name
        ("base", "lfr 1", …, "dfr 10").
    """

    stages = [m for m in stages if pipe.bundle.has(m)]
    rows = {"base": Settings(mode="none")}
    for mode in stages:
        for nfe in nfes:
            rows[f"{mode} {nfe}"] = Settings(mode=mode, alpha=alpha).with_stage(mode, "euler", nfe)
    out = {"metric": score.primary, **{mode: [] for mode in stages}, "metrics": {}}
    for name, metrics in scored_rows(pipe, score, rows, n, seed, progress):
        out["metrics"][name] = metrics
        if name == "base":
            out["base"] = metrics[score.primary]
            if check_base is not None:
                check_base(metrics)
        else:
            mode, nfe = name.split()
            out[mode].append((int(nfe), metrics[score.primary]))
    return out


def scored_rows(pipe: Pipeline, score: Scorer, rows: dict[str, Settings], n: int, seed: int, progress=None):
    """Yield (row name, every metric of ``score``) for each row run on shared prior draws; ``progress``,
    when given, is called with (fraction done, row name) after each row."""
    for done, (name, run) in enumerate(run_rows(pipe, rows, n, seed), start=1):
        yield name, score(run.x, run.labels)
        if progress:
            progress(done / len(rows), name)


ALPHA_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
ALPHA_MAP_FILE = "alpha_nfe.json"  # stored when the bundle is built (``bfr sweep --alphas``)


@torch.no_grad()
def alpha_nfe_map(
    pipe: Pipeline, score: Scorer, n: int, seed: int, alphas=ALPHA_GRID, nfes=SWEEP_NFES, progress=None
) -> dict:
    """Quality of the LFR over α × its number of Euler steps, on shared prior draws (the over-refinement
    map). Needs an α-conditioned LFR (``train-lfr --alpha-max``); every α must lie in its range.

    Returns:
        {"metric": name, "alphas": [...], "nfes": [...], "base": q, "quality": [[q for nfe] for α],
        "second": the same grid for the independent metric (``fid2``) or None,
        "best": {"alpha": a, "nfe": k, "quality": q}} with q ``score``'s primary metric.
    """
    lo_hi = pipe.bundle.alpha_range()
    if lo_hi is None:
        raise ValueError(
            f"bundle {pipe.bundle.path.name!r} has an LFR trained at one fixed α: it has no α axis to map"
        )
    outside = [a for a in alphas if not lo_hi[0] <= a <= lo_hi[1]]
    if outside:
        raise ValueError(f"α {outside} outside the LFR's trained range {lo_hi[0]:g}..{lo_hi[1]:g}")
    rows = {"base": Settings(mode="none")}
    for a in alphas:
        for k in nfes:
            rows[f"{a:g} {k}"] = Settings(mode="lfr", alpha=a, lfr_solver="euler", lfr_nfe=k)
    metrics = dict(scored_rows(pipe, score, rows, n, seed, progress))

    def grid(key: str):
        return [[metrics[f"{a:g} {k}"][key] for k in nfes] for a in alphas]

    quality = grid(score.primary)
    best = min((q, a, k) for a, row in zip(alphas, quality) for k, q in zip(nfes, row))
    second = "fid2" if "fid2" in metrics["base"] else None
    return {
        "metric": score.primary,
        "alphas": list(alphas),
        "nfes": list(nfes),
        "base": metrics["base"][score.primary],
        "quality": quality,
        "second": None
        if second is None
        else {"metric": second, "base": metrics["base"][second], "quality": grid(second)},
        "best": {"alpha": best[1], "nfe": best[2], "quality": best[0]},
    }


def load_alpha_map(bundle) -> dict | None:
    """The bundle's stored α × NFE map, validated, or None when it has none."""

    def valid(stored):
        m = stored["map"]
        shape_ok = len(m["quality"]) == len(m["alphas"]) and all(
            len(r) == len(m["nfes"]) for r in m["quality"]
        )
        return shape_ok and all(isinstance(q, (int, float)) for r in m["quality"] for q in r)

    return load_stored_measurement(bundle.path / ALPHA_MAP_FILE, valid, "α × NFE map")


@torch.no_grad()
def lfr_drift(pipe: Pipeline, n: int, seed: int, nfes=SWEEP_NFES, alpha: float | None = None) -> torch.Tensor:
    """Images G(F_LFR^(k)(z)) for k Euler steps, stacked as (len(nfes) + 1, n, ...); row 0 is G(z).

    The refined latents of every k are decoded by one batched base solve (the base dominates the cost).
    """
    s = pipe.resolve(Settings(mode="lfr", alpha=alpha, lfr_solver="euler"))
    z, labels = pipe.prior(n, seed), pipe.labels_for(n, None)
    latents = [z]
    for nfe in nfes:
        latents.append(
            pipe.refine(
                "latent", z, labels, replace(s, lfr_nfe=nfe), torch.Generator().manual_seed(seed + 1)
            ).x
        )
    return decode_stack(pipe, latents, labels, s)


def drift_from_base(rows: torch.Tensor) -> torch.Tensor:
    """Each sample's drift: d[i, k] = sqrt(mean over pixels of (rows[k + 1, i] − rows[0, i])²).

    ``rows`` is :func:`lfr_drift`'s (K + 1, n, ...) stack, row 0 the base images G(z); the result is (n, K),
    how far each sample has moved from its unrefined image after each refiner setting.
    """
    return (rows[1:] - rows[:1]).flatten(2).pow(2).mean(2).sqrt().T


OVERSHOOT_STEP = 0.25  # Euler step in t: the trained setting t1 = 1 is 4 steps
MAX_OVERSHOOT = 3.0


def decode_stack(pipe: Pipeline, latents: list[torch.Tensor], labels, s: Settings) -> torch.Tensor:
    """G of several (n, ...) latent batches by one batched base solve (the base dominates the cost),
    stacked as (len(latents), n, ...)."""
    all_labels = None if labels is None else labels.repeat(len(latents))
    x = pipe.generate(torch.cat(latents), all_labels, s).x
    return x.view(len(latents), len(latents[0]), *x.shape[1:])


@torch.no_grad()
def lfr_overshoots(
    pipe: Pipeline, score, n: int, seed: int, factors=(1.0,), alpha: float | None = None
) -> dict:
    """Provoke over-refinement: integrate the LFR from t = 0 to t = factor instead of its trained t = 1.

    The field was trained only for t ≤ 1, so past 1 this extrapolates: z ↦ z + ∫₀^factor v(t, z_t) dt,
    with Euler steps of ``OVERSHOOT_STEP`` (NFE = factor / step; factor 1 is the trained setting, 4 steps).
    Every factor refines the same prior draws z of (n, seed); all are decoded by one base solve.

    Returns:
        {"metric": name, "base": (G(z), quality), "factors": {factor: (images, quality, nfe)}} with
        quality ``score``'s primary metric.
    """
    for f in factors:
        steps = f / OVERSHOOT_STEP
        if not 1.0 <= f <= MAX_OVERSHOOT or abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"overshoot must be a multiple of {OVERSHOOT_STEP} in 1..{MAX_OVERSHOOT}, got {f!r}"
            )
    base = pipe.run(n, seed, Settings(mode="none"))
    s = pipe.resolve(Settings(mode="lfr", alpha=alpha, lfr_solver="euler"))
    nfes = [round(f / OVERSHOOT_STEP) for f in factors]
    g = torch.Generator()
    latents = [
        pipe.refine("latent", base.z, base.labels, replace(s, lfr_nfe=k), g.manual_seed(seed + 1), t1=f).x
        for f, k in zip(factors, nfes)
    ]
    images = decode_stack(pipe, latents, base.labels, s)

    def quality(x):
        return score(x, base.labels)[score.primary]

    return {
        "metric": score.primary,
        "base": (base.base, quality(base.base)),
        "factors": {f: (x, quality(x), k) for f, x, k in zip(factors, images, nfes)},
    }


OVERSHOOT_FACTORS = (1.0, 1.25, 1.5, 1.75, 2.0)  # the app's overshoot slider
OVERSHOOT_FILE = "overshoot"  # BUNDLE/overshoot.safetensors, written by `bfr overshoot`
OVERSHOOT_SHOWN = 16  # images kept per row


def overshoot_tensors(
    pipe: Pipeline, score, n: int, seed: int, shown: int = OVERSHOOT_SHOWN
) -> tuple[dict, dict]:
    """What ``bfr overshoot`` stores: ``lfr_overshoots`` at every factor of the app's slider and the LFR's
    default α, keeping the scores of all n samples and the first ``shown`` images of each row.

    Returns (tensors {"base": (shown, ...), "factors": (F, shown, ...)}, meta {"factors", "quality"
    (base first, then per factor), "nfe", "metric", "n", "seed", "alpha", "lfr_sha256"})."""

    r = lfr_overshoots(pipe, score, n, seed, OVERSHOOT_FACTORS)
    rows = [r["factors"][f] for f in OVERSHOOT_FACTORS]
    tensors = {"base": r["base"][0][:shown], "factors": torch.stack([x[:shown] for x, _, _ in rows])}
    meta = {
        "factors": list(OVERSHOOT_FACTORS),
        "quality": [r["base"][1]] + [q for _, q, _ in rows],
        "nfe": [k for *_, k in rows],
        "metric": r["metric"],
        "n": n,
        "seed": seed,
        "alpha": pipe.resolve(Settings(mode="lfr")).alpha,
        "lfr_sha256": lfr_fingerprint(pipe.bundle),
    }
    return tensors, meta


def load_overshoot(pipe: Pipeline, n: int, seed: int, alpha: float | None) -> dict | None:
    """The bundle's stored overshoot view in ``lfr_overshoots``' form (images: the first shown), or None
    when it has none, or one of other draws, another α (None: the LFR's own) or another LFR file."""

    f = pipe.bundle.file(OVERSHOOT_FILE)
    if f is None or not pipe.bundle.has("lfr"):
        return None
    tensors, meta = load_tensors(f)
    lfr_file = lfr_fingerprint(pipe.bundle)
    same_alpha = alpha is None or abs(alpha - meta.get("alpha", float("nan"))) < 1e-9
    if (meta.get("n"), meta.get("seed"), meta.get("lfr_sha256")) != (n, seed, lfr_file) or not same_alpha:
        return None
    factors, quality, nfe = meta.get("factors"), meta.get("quality"), meta.get("nfe")
    ok = isinstance(factors, list) and isinstance(quality, list) and isinstance(nfe, list)
    if not ok or len(quality) != len(factors) + 1 or tensors["factors"].shape[0] != len(factors):
        raise CheckpointError(f"{f}: not an overshoot view; delete it and run `bfr overshoot`")
    return {
        "metric": meta["metric"],
        "base": (tensors["base"], quality[0]),
        "factors": {fa: (x, q, k) for fa, x, q, k in zip(factors, tensors["factors"], quality[1:], nfe)},
    }
