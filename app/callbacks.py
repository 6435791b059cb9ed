"""Gradio callbacks: validate the raw widget/API values, call bfr_core, shape the outputs.

Every callback refuses bad input with a ``gr.Error`` that names the field, before any work.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import logging
import math
import re
import threading
import time

import gradio as gr
import torch

from bfr_core.budget import EXTRA_BASE_NFE, budget_rows, load_budget
from bfr_core.checkpoint import CheckpointError
from bfr_core.classifier import batch_summary
from bfr_core.data import TOY_SETS, DataError
from bfr_core.lab import cached_bias_lab, kept_bias_lab
from bfr_core.ode import FIXED_SOLVERS, DivergenceError, grid_steps, solver_for_nfe
from bfr_core.evaluate import describe
from bfr_core.pipeline import MODES, Settings
from bfr_core.refiners import REFINERS
from bfr_core.roundtrip import bias_meter, decode_latent, round_trip, shell_width
from bfr_core.runner import run_rows
from bfr_core.trajectories import frame_index, pipeline_paths
from bfr_core.sweep import (
    OVERSHOOT_STEP,
    SWEEP_NFES,
    drift_from_base,
    lfr_drift,
    OVERSHOOT_FACTORS,
    load_overshoot,
    lfr_overshoots,
    load_alpha_map,
    load_sweep,
    nfe_sweep,
)

from . import figures, registry, urlstate
from .memo import single_flight

APP_MAX_SAMPLES = 256
MY_POINTS = "my points"  # the bias lab's choice that trains on the user's pasted points
LAB_REDRAW_S = 0.5  # seconds between live redraws of the bias lab's training curves
LAB_PANELS = 7  # the bias lab's outputs before its training-curves plot
MAX_SEED = 2**31 - 1
MAX_NFE = 100


MAX_MESSAGE = 300  # characters of a refusal shown to the client or logged
ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+)+[/\\]?")
log = logging.getLogger("bfr_explorer")


def public_message(e: Exception) -> str:
    """What a client may read about an error: no absolute paths, no environment, bounded length."""
    if isinstance(e, DataError):
        return "this view needs the bundle's dataset, which is not installed on the server"
    text = ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/\\").rsplit("/", 1)[-1] or "…", str(e))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class ComputeGauge:
    """Callbacks running right now, and the most that ever ran at once (for the load benchmark)."""

    def __init__(self):
        self.lock, self.active, self.peak = threading.Lock(), 0, 0

    def __enter__(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def __exit__(self, *exc):
        with self.lock:
            self.active -= 1


COMPUTING = ComputeGauge()


def refusal(fn_name: str, e: Exception) -> gr.Error:
    """The UI / API message for a validation error: logged as one line, no traceback."""
    message = public_message(e)
    log.info("refused %s: %s", fn_name, message)
    return gr.Error(message, print_exception=False)


REFUSED = (ValueError, CheckpointError, DivergenceError, DataError)


def user_errors(fn):
    """Turn the library's validation errors into messages shown in the UI / returned by the API.

    A refusal is one log line (no traceback); any other exception is a bug and propagates. A generator
    (a view that streams updates) stays a generator, so Gradio still streams it.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                with COMPUTING:
                    yield from fn(*args, **kwargs)
            except REFUSED as e:
                raise refusal(fn.__name__, e) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with COMPUTING:
                return fn(*args, **kwargs)
        except REFUSED as e:
            raise refusal(fn.__name__, e) from None

    return wrapper


def as_int(value, name: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; floats are accepted only when whole (sliders send 4.0)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(f)


def as_alpha(value) -> float:
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1], got {value!r}") from None
    if not math.isfinite(a) or not 0 <= a <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {value!r}")
    return a


def as_time(t) -> float:
    """A scrubber time t in 0..1 (a ValueError names a bad one)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
        raise ValueError(f"t must be a number in 0..1, got {t!r}")
    return float(t)


def as_label(value):
    if value in (None, "", "any"):
        return None
    return as_int(value, "class", 0, 9)


def request(bundle, seed, n, label, base_solver, base_nfe, mode, lfr_variant, lfr_nfe, alpha, dfr_nfe):
    """Validate one Refine request; returns (pipeline, n, seed, label, Settings)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    pipe = registry.pipeline(bundle)
    settings = Settings(
        mode=mode,
        base_solver=base_solver,
        base_nfe=as_int(base_nfe, "base NFE", 1, MAX_NFE),
        lfr_variant=lfr_variant,
        lfr_solver="euler" if lfr_variant == "reflow" else None,
        lfr_nfe=as_int(lfr_nfe, "LFR NFE", 1, MAX_NFE),
        alpha=as_alpha(alpha) if pipe.bundle.alpha_range() else None,
        dfr_nfe=as_int(dfr_nfe, "DFR NFE", 1, MAX_NFE),
    )
    if mode in ("lfr", "lfr+dfr") and lfr_variant == "ode":
        settings.lfr_solver = solver_for_nfe(settings.lfr_nfe)
    settings.dfr_solver = solver_for_nfe(settings.dfr_nfe)
    return (
        pipe,
        as_int(n, "number of samples", 1, APP_MAX_SAMPLES),
        as_int(seed, "seed", 0, MAX_SEED),
        as_label(label) if pipe.bundle.num_classes else None,
        pipe.resolve(settings),
    )


REFINE_FIELDS = (
    "bundle",
    "seed",
    "n",
    "label",
    "base_solver",
    "base_nfe",
    "mode",
    "lfr_variant",
    "lfr_nfe",
    "alpha",
    "dfr_nfe",
)  # the Refine controls, in the order of their inputs and URL parameters


def share_query(**controls) -> str:
    """The query string that reopens Refine with these settings (``?tab=refine&bundle=mnist&seed=3…``)."""
    return urlstate.share_link("refine", **{k: controls[k] for k in REFINE_FIELDS})


ALPHA_DEFAULT = 0.2  # every α slider's initial value (the α the shipped fixed-α LFRs were trained at)
REFINE_DEFAULTS = {
    "seed": 0,
    "n": 16,
    "label": "any",
    "base_solver": "rk4",
    "base_nfe": 20,
    "mode": "lfr+dfr",
    "lfr_variant": "ode",
    "lfr_nfe": 4,
    "alpha": ALPHA_DEFAULT,
    "dfr_nfe": 4,
}  # the Refine controls' initial values (the bundle: the menu's first), which the start-up warm-up computes
TRAJECTORY_DEFAULTS = {"seed": 0, "base_nfe": 20, "refiner_nfe": 4, "t": 1.0}  # likewise, Trajectories
INSPECT_DEFAULTS = {"index": 0, "solver": "rk4", "nfe": 20, "alpha": ALPHA_DEFAULT}  # likewise, Inspect


@user_errors
def refine(bundle, seed, n, label, base_solver, base_nfe, mode, lfr_variant, lfr_nfe, alpha, dfr_nfe):
    """Base and refined samples side by side, their difference, and quick batch metrics. The answer is
    a pure function of the validated request, so the last ``REFINE_KEPT`` are kept (the default one is
    computed at start-up) and a repeated request is answered without sampling again."""
    controls = dict(locals())  # the Refine controls by name (REFINE_FIELDS), for the share link
    _, n, seed, label, s = request(**controls)
    key = (bundle, n, seed, label, *dataclasses.astuple(s))  # validated scalars: hashable
    return refine_answer(key, share_query(**controls))


REFINE_KEPT = 64


@single_flight(maxsize=REFINE_KEPT)
def refine_answer(key: tuple, link: str):
    bundle, n, seed, label = key[:4]
    pipe = registry.pipeline(bundle)
    s = Settings(*key[4:])
    st = pipe.run(n, seed, s, label=label)
    summary = [
        f"**{s.mode}** · NFE per sample: "
        + ", ".join(f"{k} {v}" for k, v in st.nfe.items())
        + f" (total {sum(st.nfe.values())}) · [link to these settings]({link})"
    ]
    hist = None
    if pipe.bundle.has("classifier"):
        clf = pipe.bundle.models["classifier"]
        b, r = batch_summary(clf, st.base, st.labels), batch_summary(clf, st.final, st.labels)
        for name, m in (("base", b), ("refined", r)):
            acc = f", accuracy vs requested class {m['accuracy']:.0%}" if "accuracy" in m else ""
            summary.append(f"- {name}: classifier confidence {m['confidence']:.3f}{acc}")
        hist = figures.class_histogram(b["histogram"], r["histogram"])
    pictures = (figures.grid(st.base), figures.grid(st.final), figures.difference_map(st.base, st.final))
    return (*map(figures.png_file, pictures), "\n".join(summary), hist)


@user_errors
def generate(bundle, seed, n, label, base_solver, base_nfe):
    """Base samples only (no refinement)."""
    pipe, n, seed, label, s = request(bundle, seed, n, label, base_solver, base_nfe, "none", "ode", 4, 0.2, 4)
    return figures.png_file(figures.grid(pipe.run(n, seed, s, label=label).base))


@user_errors
def latents(bundle, seed, alpha, lfr_nfe, progress=gr.Progress()):
    """UMAP of prior vs biased latents with LFR-refined latents at the current α and NFE, and the
    faithful companions: the distribution of ‖z‖/√d of each cloud, their energy distances, and (images)
    the per-pixel variance of the biased latents."""
    pipe = registry.pipeline(bundle)
    title = "latent space (UMAP)"
    alpha_arg = nfe_arg = None
    if pipe.bundle.has("lfr"):
        *_, s = request(bundle, seed, 1, None, None, 20, "lfr", "ode", lfr_nfe, alpha, 4)
        default = pipe.resolve(Settings(mode="lfr"))
        alpha_arg = None if s.alpha == default.alpha else s.alpha
        nfe_arg = None if (s.lfr_solver, s.lfr_nfe) == (default.lfr_solver, default.lfr_nfe) else s.lfr_nfe
        title = f"latent space (UMAP of all three clouds) · LFR α={s.alpha:g}, {s.lfr_solver} {s.lfr_nfe} NFE"
    lmap = registry.latent_map(bundle, alpha_arg, nfe_arg)
    if not lmap.fitted:
        progress(
            0.1, desc="fitting UMAP on prior, biased and refined latents (a setting the stored map lacks)"
        )
        lmap.fit()
    labels_b = lmap.biased_labels if lmap.biased_labels is not None else [0] * len(lmap.biased_xy)
    refined_labels = None
    if lmap.refined_xy is not None:
        shown = len(lmap.refined_xy)
        refined_labels = pipe.labels_for(len(lmap.prior), None)
        refined_labels = torch.zeros(shown) if refined_labels is None else refined_labels[:shown]
        if shown < len(lmap.prior):
            title += f" · refined: the first {shown} of {len(lmap.prior)} draws shown"
    scatter = figures.latent_scatter(
        lmap.prior_xy, lmap.biased_xy, labels_b, lmap.refined_xy, refined_labels, title
    )
    clouds = lmap.cloud_norms()
    d, summary = lmap.distances(), ""
    if d is not None:
        summary = (
            f"Energy distance (lower = closer): refined → biased **{d['refined_to_biased']:.3f}**, "
            f"refined → prior {d['refined_to_prior']:.3f}; prior → biased {d['prior_to_biased']:.3f}. "
            f"Mean ‖z‖/√d: " + ", ".join(f"{k} {float(v.mean()):.3f}" for k, v in clouds.items())
        )
    norms = figures.norm_histogram(clouds)
    link = urlstate.share_link("latents", l_bundle=bundle, l_alpha=alpha, l_nfe=lfr_nfe)
    variance = None
    if len(pipe.bundle.shape) == 3:  # where the bias lives: per-pixel variance of the biased latents
        var = torch.from_numpy(lmap.biased).view(-1, *pipe.bundle.shape).var(0).mean(0).numpy()
        title = f"per-pixel variance of the biased latents (prior: 1; mean {var.mean():.2f})"
        variance = figures.variance_map(var, title)
    return scatter, norms, f"{summary} [link to this view]({link})", variance


SWEEP_SOURCES = ("precomputed", "live")
LIVE_SWEEP_SAMPLES = 500


DRIFT_SAMPLES = 8


@single_flight(maxsize=8)
def cached_drift_rows(bundle: str, alpha: float | None) -> torch.Tensor:
    """The Over-refinement strip's images: ``sweep.lfr_drift`` of 8 samples (seed 1), kept per (bundle, α)."""
    return lfr_drift(registry.pipeline(bundle), DRIFT_SAMPLES, seed=1, alpha=alpha)


def warm_overrefine(bundle: str) -> None:
    """Keep the drift strip at the UI's initial α (a bundle without an LFR or of 2-D points has none)."""
    pipe = registry.pipeline(bundle)
    if pipe.bundle.has("lfr") and len(pipe.bundle.shape) == 3:
        cached_drift_rows(bundle, as_alpha(ALPHA_DEFAULT) if pipe.bundle.alpha_range() else None)


@user_errors
def overrefine(bundle, alpha, source="precomputed", progress=gr.Progress()):
    """Quality vs refiner NFE for LFR and DFR, and how a few LFR samples drift with NFE (a strip, and
    each sample's distance from its base image per NFE).

    ``precomputed`` shows the curves stored in the bundle at build time (``bfr sweep``) when they exist
    for this α; ``live`` measures them now on 500 samples.
    """
    if source not in SWEEP_SOURCES:
        raise ValueError(f"source must be one of {', '.join(SWEEP_SOURCES)}, got {source!r}")
    pipe = registry.pipeline(bundle)
    a = as_alpha(alpha) if pipe.bundle.alpha_range() else None
    stored = load_sweep(pipe.bundle) if source == "precomputed" else None
    if stored is not None and (a is None or stored["alpha"] is None or abs(stored["alpha"] - a) < 1e-9):
        sweep = {**stored["sweep"], "note": f"{stored['n']} samples, precomputed by `{stored['command']}`"}
    else:
        sweep = nfe_sweep(
            pipe,
            registry.scorer(bundle),
            n=LIVE_SWEEP_SAMPLES,
            seed=0,
            alpha=a,
            progress=lambda f, text: progress(f, desc=text),
        )
        sweep["note"] = f"{LIVE_SWEEP_SAMPLES} samples, measured live"
    drift = lines = None
    if pipe.bundle.has("lfr") and len(pipe.bundle.shape) == 3:
        rows = cached_drift_rows(bundle, a)  # (K+1, 8, C, H, W): one row per NFE
        drift = figures.png_file(figures.picture_rows(rows))
        lines = figures.drift_lines(drift_from_base(rows), SWEEP_NFES)
    return figures.sweep_curves(sweep), drift, lines


BUTTON_VIEWS = ("worth", "ab", "alpha_map", "overshoot")  # Over-refinement's views that a bundle may lack


def unavailable(bundle: str, view: str) -> str | None:
    """Why ``view`` (one of BUTTON_VIEWS) cannot run on ``bundle``, or None when it can: the one place that
    decides, read by the views themselves (their error) and by the UI (their button, disabled with it)."""
    b = registry.pipeline(bundle).bundle
    image = len(b.shape) == 3
    if view == "worth" and load_budget(b) is None:
        return f"bundle {bundle!r} stores no equal-NFE comparison; build one with the `bfr worth-nfe` command"
    if view == "ab" and not image:
        return f"bundle {bundle!r} holds 2-D points; the A/B view shows images (the bias lab shows points)"
    if view == "alpha_map" and load_alpha_map(b) is None:
        why = (
            "its LFR was trained at one fixed α, so it has no α axis (the curves above are its map)"
            if b.has("lfr") and b.alpha_range() is None
            else "build one with the `bfr sweep --alphas …` command"
        )
        return f"bundle {bundle!r} stores no α × NFE map: {why}"
    if view == "overshoot" and not b.has("lfr"):
        return f"bundle {bundle!r} has no LFR to overshoot"
    if view == "overshoot" and not image:
        return (
            f"the overshoot view compares image rows; {bundle!r} is a 2-D point set: see its Latents and "
            "Trajectories tabs"
        )
    return None


def refuse_unavailable(bundle: str, view: str) -> None:
    if (why := unavailable(bundle, view)) is not None:
        raise ValueError(why)


def view_buttons(bundle):
    """The Over-refinement buttons' states for ``bundle`` (gr.update each, in BUTTON_VIEWS order), then a note
    naming why each disabled one cannot run: a visitor is never offered a button that can only fail."""
    if bundle not in registry.available_bundles():
        return [gr.update()] * len(BUTTON_VIEWS) + [""]
    reasons = {view: unavailable(bundle, view) for view in BUTTON_VIEWS}
    note = "".join(f"- *Not on this bundle:* {why}\n" for why in reasons.values() if why)
    return [gr.update(interactive=reasons[v] is None) for v in BUTTON_VIEWS] + [note]


@user_errors
def worth_nfe(bundle):
    """Is refinement worth its NFE? The bundle's stored equal-total-NFE comparison: a chart and a verdict."""
    refuse_unavailable(bundle, "worth")
    pipe = registry.pipeline(bundle)
    stored = load_budget(pipe.bundle)
    metric, rows = stored["metric"], {r["row"]: r for r in stored["rows"]}
    best_base = min((r for k, r in rows.items() if k.startswith("base")), key=lambda r: r[metric])
    worth = [
        f"**{k.replace('_', ' ').upper()}** ({r['extra_nfe']:+d} NFE: {r[metric]:.2f})"
        for k, r in rows.items()
        if not k.startswith("base") and r[metric] < best_base[metric]
    ]
    text = (
        f"The best base-only {metric.upper()} with up to {max(r['extra_nfe'] for r in rows.values())} extra "
        f"NFE is {best_base[metric]:.2f} ({best_base['what']}). Refiners that beat it: "
        + (", ".join(worth) if worth else "none")
        + "."
    )
    return figures.budget_chart(stored), text


AB_ROWS = ("base", *(f"base +{e}" for e in EXTRA_BASE_NFE), *REFINERS)  # every row a bundle's chart can have
AB_SAMPLES = 16
AB_DEFAULTS = {"a": "base +4", "b": "lfr", "seed": 0}


@user_errors
def ab_compare(bundle, a, b, seed):
    """Two rows of the equal-NFE comparison on the same 16 prior draws, side by side: what each spends
    and, from the stored chart, how it scores. Both run through ``runner.run_rows``, so they share z
    (and G(z), when a row keeps the base's default setting)."""
    refuse_unavailable(bundle, "ab")
    pipe = registry.pipeline(bundle)
    seed = as_int(seed, "seed", 0, MAX_SEED)
    rows = budget_rows(pipe)
    for name in (a, b):
        if name not in rows:
            raise ValueError(f"bundle {bundle!r} has no row {name!r} to compare; its rows: {', '.join(rows)}")
    return ab_answer(bundle, a, b, seed)


@functools.lru_cache(maxsize=32)
def ab_answer(bundle: str, a: str, b: str, seed: int) -> tuple:
    """The A/B pictures and text of a validated request, kept (a pure function of it)."""
    pipe = registry.pipeline(bundle)
    rows = budget_rows(pipe)
    runs = dict(run_rows(pipe, {"A": rows[a], "B": rows[b]}, AB_SAMPLES, seed))
    stored = load_budget(pipe.bundle)
    scores = {} if stored is None else {r["row"]: r for r in stored["rows"]}
    lines = []
    for side, name in (("A", a), ("B", b)):
        run = runs[side]
        line = f"**{side}: {name}** — {describe(run.settings, run.nfe)}, {sum(run.nfe.values())} NFE in all"
        if name in scores:
            m = stored["metric"]
            line += f"; stored {m.upper()} {scores[name][m]:.2f} (n = {stored['n']})"
        lines.append(line)
    link = urlstate.share_link("overrefine", o_bundle=bundle, ab_a=a, ab_b=b, ab_seed=seed)
    lines.append(f"The same {AB_SAMPLES} noise draws (seed {seed}). [link to this view]({link})")
    text = "  \n".join(lines)
    pictures = (figures.png_file(figures.grid(runs[side].x)) for side in "AB")
    return (*pictures, text)


NOISE_FLOOR = 0.02  # a relative gap below which one stored score does not tell two cells apart


@user_errors
def alpha_map(bundle):
    """The over-refinement map: the bundle's stored LFR quality over α × NFE (``bfr sweep --alphas``)."""
    refuse_unavailable(bundle, "alpha_map")
    pipe = registry.pipeline(bundle)
    stored = load_alpha_map(pipe.bundle)
    m = stored["map"]
    best, metric = m["best"], m["metric"].upper()
    row = m["quality"][m["alphas"].index(best["alpha"])]
    text = (
        f"Best cell: α = {best['alpha']:g} with {best['nfe']} LFR Euler step(s), {metric} "
        f"{best['quality']:.3g} against the base's {m['base']:.3g}. "
    )
    if best["quality"] >= m["base"]:
        text += "No cell beats the base: on this bundle the LFR does not improve the metric at any α or NFE."
    elif best["nfe"] < m["nfes"][-1] and row[-1] > best["quality"] * (1 + NOISE_FLOOR):
        text += f"At that α, {m['nfes'][-1]} steps give {row[-1]:.3g}: more NFE for less, over-refinement."
    elif best["nfe"] < m["nfes"][-1]:
        text += (
            f"At that α, {m['nfes'][-1]} steps give {row[-1]:.3g}: within {NOISE_FLOOR:.0%} of the best, "
            "about the seed-to-seed spread of one score, so this map shows no over-refinement beyond noise."
        )
    else:
        text += "At that α the most steps are best: this map shows no over-refinement."
    return figures.alpha_nfe_heatmap(stored), text


OVERSHOOT_SAMPLES, OVERSHOOT_SEED = 200, 1  # scored; shown: the first 16 (as `bfr overshoot` stores it)
MAX_OVERSHOOT_UI = OVERSHOOT_FACTORS[-1]


OVERSHOOT_DEFAULTS = {"alpha": ALPHA_DEFAULT, "factor": 1.5}  # the UI's initial values, warmed at start-up


def overshoot_alpha(bundle: str, alpha) -> float | None:
    """The α the overshoot runs at: the slider's for an α-conditioned LFR, None (its own) for a fixed one."""
    return as_alpha(alpha) if registry.pipeline(bundle).bundle.alpha_range() else None


@single_flight(maxsize=8)
def cached_overshoots(bundle: str, alpha: float | None) -> dict:
    """The overshoot view at every factor of its slider: stored in the bundle (``bfr overshoot``), else
    computed together and kept; either way moving the slider costs a picture, not a solve."""
    pipe = registry.pipeline(bundle)
    stored = load_overshoot(pipe, OVERSHOOT_SAMPLES, OVERSHOOT_SEED, alpha)  # `bfr overshoot`: no solve
    if stored is not None:
        return stored
    return lfr_overshoots(
        pipe, registry.scorer(bundle), OVERSHOOT_SAMPLES, OVERSHOOT_SEED, OVERSHOOT_FACTORS, alpha
    )


def warm_overshoot(bundle: str) -> None:
    """Keep the overshoot view at the UI's initial α (a bundle without an LFR has none)."""
    if registry.pipeline(bundle).bundle.has("lfr"):
        cached_overshoots(bundle, overshoot_alpha(bundle, OVERSHOOT_DEFAULTS["alpha"]))


@user_errors
def overshoot(bundle, alpha, factor):
    """Provoke over-refinement: the LFR integrated past its trained end t = 1, beside the trained setting."""
    refuse_unavailable(bundle, "overshoot")
    if (
        isinstance(factor, bool)
        or not isinstance(factor, (int, float))
        or not 1 <= factor <= MAX_OVERSHOOT_UI
    ):
        raise ValueError(f"overshoot must be a number in 1..{MAX_OVERSHOOT_UI:g}, got {factor!r}")
    factor = round(float(factor) / OVERSHOOT_STEP) * OVERSHOOT_STEP
    r = cached_overshoots(bundle, overshoot_alpha(bundle, alpha))
    (trained, q_trained, k_trained), (far, q_far, k_far) = r["factors"][1.0], r["factors"][factor]
    shown = torch.stack([r["base"][0][:16], trained[:16], far[:16]])
    text = (
        f"{r['metric'].upper()} on {OVERSHOOT_SAMPLES} samples (lower is better; few samples: only large "
        f"gaps mean much): base **{r['base'][1]:.2f}**, LFR to t = 1 as trained ({k_trained} Euler steps) "
        f"**{q_trained:.2f}**, LFR to t = {factor:g} (**extrapolated** past the trained range, "
        f"{k_far} steps) **{q_far:.2f}**. Rows: base, trained, overshoot."
    )
    if factor > 1 and q_far < q_trained:
        text += (
            " Better than t = 1 here: a sign that this LFR stops short of the correction the bias needs "
            "(under-correction, the opposite of over-refinement). One seed of few samples can mislead: "
            "`python bench/overshoot_seeds.py --bundle …` checks it over seeds under two metrics."
        )
    return figures.png_file(figures.picture_rows(shown)), text


METER_IMAGES = 64  # real images inverted for the bias meter
NEAREST = 3


@functools.lru_cache(maxsize=64)
def cached_bias_meter(bundle: str, solver: str, nfe: int) -> dict:
    """The bias meter of a bundle at one inversion setting, computed once (it ignores the image)."""
    x, y = registry.examples(bundle)
    return bias_meter(registry.pipeline(bundle), x[:METER_IMAGES], y[:METER_IMAGES], solver, nfe)


def round_trip_strip(bundle: str, rt, first: str, itself: int | None = None) -> tuple[torch.Tensor, str]:
    """The round trip as one picture row — the real image (when known), G(z_b), G(F_LFR(z_b)) and the
    real image's nearest training images (``itself``: its own index in the training set, left out) —
    and the row's caption, ``first`` naming the real image."""
    strip = ([rt.image] if rt.image is not None else []) + [rt.regenerated]
    captions = (f"{first} · " if rt.image is not None else "") + "G(z_b) regenerated"
    if rt.lfr_regenerated is not None:
        strip.append(rt.lfr_regenerated)
        captions += " · G(F_LFR(z_b)): the LFR moves this latent too"
    train = registry.training_images(bundle)
    if train is not None and rt.image is not None:
        dist = torch.cdist(rt.image.flatten(1), train.flatten(1))[0]
        if itself is not None:
            dist[itself] = math.inf
        strip += [train[j : j + 1] for j in dist.topk(NEAREST, largest=False).indices.tolist()]
        captions += f" · its {NEAREST} nearest {'other ' if itself is not None else ''}training images"
    else:
        captions += " · (nearest training images: the dataset is not on disk)"
    return torch.cat(strip)[None], captions


def latent_line(rt, solver: str, nfe: int, shell_width: float) -> str:
    """The inverted latent's statistics and, with the real image, its reconstruction error."""
    st = rt.latent_stats
    text = (
        f"Inverted latent z_b = G⁻¹(x) ({solver}, {nfe} NFE): mean {st['mean']:+.3f}, std {st['std']:.3f}, "
        f"‖z‖/√d **{st['norm_per_dim']:.3f}** (N(0, I): 1 ± {shell_width:.3f})."
    )
    if rt.reconstruction_error is not None:
        text += f" Reconstruction error |G(z_b) − x| = **{rt.reconstruction_error:.4f}** per pixel."
    return text


@user_errors
def inspect_example(bundle, index, solver, nfe, alpha):
    """The round-trip inspector for one shipped test image, and the bias meter at the same solver and NFE."""
    pipe = registry.pipeline(bundle)
    x, y = registry.examples(bundle)
    i = as_int(index, "example", 0, len(x) - 1)
    nfe = as_int(nfe, "inversion NFE", 4, 40)
    if solver not in FIXED_SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(FIXED_SOLVERS)}, got {solver!r}")
    grid_steps(solver, nfe)  # a ValueError naming a solver/NFE mismatch
    a = as_alpha(alpha) if pipe.bundle.alpha_range() else None
    rt = round_trip(pipe, x[i : i + 1], int(y[i]), solver, nfe, alpha=a)
    strip, captions = round_trip_strip(bundle, rt, "real test image")
    meter = cached_bias_meter(bundle, solver, nfe)
    text = (
        f"**{captions}**\n\n{latent_line(rt, solver, nfe, meter['shell_width'])}\n\n"
        f"**Bias meter** ({METER_IMAGES} real images inverted the same way): energy distance to N(0, I) "
        f"**{meter['energy_to_prior']:.3f}**, RMS of the latents {meter['rms']:.3f} (the prior's is 1)."
    )
    hist = figures.norm_histogram(
        {
            "N(0, I) draws": meter["prior_norm_per_dim"].numpy(),
            "real images inverted": meter["norm_per_dim"].numpy(),
        },
        meter["shell_width"],
        title=f"bias meter: ‖z‖/√d of inverted real images ({solver}, {nfe} NFE) vs the prior's shell",
    )
    link = urlstate.share_link(
        "inspect", i_bundle=bundle, i_index=index, i_solver=solver, i_nfe=nfe, i_alpha=alpha
    )
    text += f"\n\n[link to this view]({link})"
    return figures.png_file(figures.picture_rows(strip)), text, hist


@user_errors
def inspect_latent(bundle, index, alpha, lfr_nfe):
    """The round-trip inspector for biased latent ``index`` of the bundle's cache (a ring clicked on the
    latent map): training image ``index``, which the base inverted to it when the bundle was built, the
    latent decoded back, its LFR refinement at the Latents tab's α and NFE, and the nearest other
    training images. No inversion runs: the latent is the cached one, the very point on the map."""
    pipe = registry.pipeline(bundle)
    lat = pipe.bundle.latents
    if lat is None:
        raise ValueError(f"bundle {bundle!r} has no cached latents (latents.safetensors) to inspect")
    i = as_int(index, "biased latent", 0, len(lat["z"]) - 1)
    a = as_alpha(alpha) if pipe.bundle.alpha_range() else None
    nfe = as_int(lfr_nfe, "LFR NFE", 1, MAX_NFE) if pipe.bundle.has("lfr") else None
    meta = pipe.bundle.meta["latents"]
    solver, inv_nfe = meta.get("solver", "rk4"), int(meta.get("nfe", 20))
    train = registry.training_images(bundle)
    image = train[i : i + 1] if train is not None and i < len(train) else None
    label = int(lat["y"][i])
    rt = decode_latent(pipe, lat["z"][i : i + 1], label, solver, inv_nfe, a, nfe, image=image)
    text = (
        f"**Biased latent #{i}** (class {label}): training image #{i}, inverted by the base when the bundle "
        f"was built. {latent_line(rt, solver, inv_nfe, shell_width(lat['z'][i].numel()))}"
    )
    link = urlstate.share_link("latents", l_bundle=bundle, l_alpha=alpha, l_nfe=lfr_nfe, l_pick=i)
    if len(pipe.bundle.shape) != 3:  # 2-D points: the numbers are the picture
        points = {"x": image, "G(z_b)": rt.regenerated, "G(F_LFR(z_b))": rt.lfr_regenerated}
        text += " " + ", ".join(
            f"{k} = ({float(v[0, 0]):+.3f}, {float(v[0, 1]):+.3f})"
            for k, v in points.items()
            if v is not None
        )
        return None, f"{text}\n\n[link to this view]({link})"
    strip, captions = round_trip_strip(bundle, rt, f"training image #{i}", itself=i)
    return figures.png_file(
        figures.picture_rows(strip)
    ), f"**{captions}**\n\n{text}\n\n[link to this view]({link})"


TRAJECTORY_SAMPLES = 8
TIME_STEP = 0.05  # the scrubber's step; frames change at each stage's grid times


@functools.lru_cache(maxsize=16)
def cached_paths(bundle: str, seed: int, base_nfe: int, refiner_nfe: int) -> dict:
    """Every stage's path for one setting, solved once: scrubbing then only picks frames."""
    s = Settings(
        base_solver="rk4",
        base_nfe=base_nfe,
        lfr_solver="euler",
        lfr_nfe=refiner_nfe,
        dfr_solver="euler",
        dfr_nfe=refiner_nfe,
    )
    return pipeline_paths(registry.pipeline(bundle), TRAJECTORY_SAMPLES, seed, s)


@user_errors
def trajectory(bundle, seed, base_nfe, refiner_nfe, t):
    """The same 8 samples at time t of the base solve (RK4), the LFR path (decoded) and the DFR path."""
    pipe = registry.pipeline(bundle)
    if len(pipe.bundle.shape) != 3:
        raise ValueError(f"bundle {bundle!r} is not an image bundle; the 2-D lab shows its paths")
    seed, base_nfe = as_int(seed, "seed", 0, MAX_SEED), as_int(base_nfe, "base NFE", 4, 40)
    refiner_nfe = as_int(refiner_nfe, "refiner NFE", 1, 10)
    grid_steps("rk4", base_nfe)
    as_time(t)
    paths = cached_paths(bundle, seed, base_nfe, refiner_nfe)
    rows, notes = [], []
    for name, path in paths.items():
        k = frame_index(path, t)
        rows.append(path.frames[k])
        notes.append(f"{name.upper()}: step {k} of {len(path.times) - 1} (t = {path.times[k]:.2f})")
    text = f"**t = {t:.2f}** · rows: {', '.join(n.upper() for n in paths)} · " + " · ".join(notes)
    link = urlstate.share_link(
        "trajectories", t_bundle=bundle, t_seed=seed, t_base=base_nfe, t_nfe=refiner_nfe, t_time=t
    )
    return figures.png_file(figures.picture_rows(torch.stack(rows))), f"{text} · [link to this view]({link})"


PLAY_FRAME_S = 0.2  # pause between the play button's frames (each frame is a picture, not a solve)


def played(frame):
    """(t, *frame(t)) for t from 0 to 1 in scrubber steps, PLAY_FRAME_S apart: what a ▶ play streams."""
    for k in range(round(1 / TIME_STEP) + 1):
        t = round(k * TIME_STEP, 4)
        yield (t, *frame(t))
        time.sleep(PLAY_FRAME_S)


@user_errors
def play(bundle, seed, base_nfe, refiner_nfe):
    """Play the solve: t from 0 to 1 in scrubber steps, streaming (t, picture, text) for each frame; the
    paths are solved once (``cached_paths``), so a frame costs a picture."""
    yield from played(lambda t: trajectory.__wrapped__(bundle, seed, base_nfe, refiner_nfe, t))


def step_time(t, direction: int) -> float:
    """t moved by one scrubber step, wrapping around 0..1 (the play button's next frame)."""
    t = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0
    nxt = round(t + direction * TIME_STEP, 4)
    return 0.0 if nxt > 1 + 1e-9 else 1.0 if nxt < -1e-9 else nxt


def step_forward(t) -> float:
    return step_time(t, 1)


def step_back(t) -> float:
    return step_time(t, -1)


def lab_request(toy, base_steps, refine_steps) -> tuple[str, int, int]:
    """The lab's (toy set, base steps, refiner steps), validated (a ValueError names a bad one)."""
    if toy not in (*TOY_SETS, MY_POINTS):
        raise ValueError(f"unknown toy set {toy!r}; choose one of {', '.join(TOY_SETS)} or {MY_POINTS!r}")
    return toy, as_int(base_steps, "base steps", 10, 3000), as_int(refine_steps, "refiner steps", 10, 3000)


LAB_SCENES = {  # the scrubber's panels: path, the reference cloud beside it, the title
    "base": ("real", "base ODE: noise z → G(z)"),
    "lfr": ("biased latents G⁻¹(real)", "LFR in latent space: z → F_LFR(z)"),
    "dfr": ("real", "DFR: G(z) → F_DFR(G(z))"),
}


@user_errors
def lab_scrub(toy, base_steps, refine_steps, points, t):
    """The lab's three paths at time t — the base solve, the LFR's path in latent space, the DFR's path —
    each beside its reference cloud, on axes fixed over the whole path (so the points visibly move).
    Reads the lab's kept run: nothing trains here."""
    args = lab_request(toy, base_steps, refine_steps)
    as_time(t)
    r = kept_bias_lab(*args, points if toy == MY_POINTS else None)
    if r is None:
        raise ValueError("press 'Train live' first: the scrubber shows the paths of the lab's last run")
    panels, notes = [], []
    for name, (reference_name, title) in LAB_SCENES.items():
        path = r.paths[name]
        reference = r.biased_latents if name == "lfr" else r.real
        k = frame_index(path, t)
        box = figures.bounding_box(path.frames, reference)
        cloud = {reference_name: reference, f"{name.upper()} at t = {path.times[k]:.2f}": path.frames[k]}
        panels.append(figures.toy_panel(cloud, title, box=box))
        notes.append(f"{name.upper()}: step {k} of {len(path.times) - 1}")
    return (*panels, f"**t = {t:.2f}** · " + " · ".join(notes))


@user_errors
def lab_play(toy, base_steps, refine_steps, points):
    """Play the lab's paths from t = 0 to 1 in scrubber steps, streaming (t, three panels, text)."""
    yield from played(lambda t: lab_scrub.__wrapped__(toy, base_steps, refine_steps, points, t))


@user_errors
def bias_lab(toy, base_steps, refine_steps, points="", progress=gr.Progress()):
    """Train a short base on a toy set (or the user's pasted points) live, show its bias, then correct
    it with LFR and DFR. Streams: the training-loss curves are redrawn about twice a second while the
    lab trains (every other output unchanged), then every panel is filled."""
    args = lab_request(toy, base_steps, refine_steps)
    if toy == MY_POINTS and not (isinstance(points, str) and points.strip()):
        raise ValueError(f"paste your points (one 'x, y' per line) to train on '{MY_POINTS}'")
    curves, outcome = {}, {}

    def train():
        try:
            outcome["result"] = cached_bias_lab(
                *args,
                progress=lambda f, text: progress(f, desc=text),
                points=points if toy == MY_POINTS else None,
                curves=curves,
            )
        except Exception as e:  # noqa: BLE001 - re-raised in the request's own thread below
            outcome["error"] = e

    context = contextvars.copy_context()  # the request's context, so progress reaches this request's page
    worker = threading.Thread(target=context.run, args=(train,), name="bias-lab", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(LAB_REDRAW_S)
        if worker.is_alive() and any(curves.values()):
            yield (*(gr.update() for _ in range(LAB_PANELS)), figures.training_curves(curves))
    if "error" in outcome:
        raise outcome["error"]
    r = outcome["result"]
    e = r.energy
    data = figures.toy_panel({"real": r.real, "base samples": r.generated}, "real vs short-trained base")
    lat = figures.toy_panel(
        {
            "prior N(0, I)": r.prior,
            "biased latents G⁻¹(real)": r.biased_latents,
            "LFR latents": r.lfr_latents,
        },
        "latent space: inversion exposes the bias",
    )
    fixed = figures.toy_panel(
        {
            "real": r.real,
            "base (before)": r.generated,
            "LFR (after)": r.lfr_points,
            "DFR (after)": r.dfr_points,
        },
        "the same samples before and after (grey: each DFR sample's path)",
        trajectory=r.dfr_trajectory,
    )
    bars = figures.energy_bars(
        {"base": e["base"], "LFR": e["lfr"], "DFR": e["dfr"], "real training points": e["train"]}
    )
    lfr_field = figures.field_panel(
        {"prior N(0, I)": r.prior, "biased latents G⁻¹(real)": r.biased_latents},
        r.lfr_field,
        "LFR's field in latent space: where it pushes prior draws",
    )
    dfr_field = figures.field_panel(
        {"real": r.real, "base samples": r.generated},
        r.dfr_field,
        "DFR's field in data space: where it pushes samples",
    )
    md = (
        f"Energy distance to held-out points (lower is better): base **{e['base']:.4f}**, "
        f"LFR **{e['lfr']:.4f}**, "
        f"DFR **{e['dfr']:.4f}**; real training points {e['train']:.4f}. "
        f"Biased latents vs prior: {e['latents_vs_prior']:.4f}."
    )
    yield data, lat, fixed, bars, md, lfr_field, dfr_field, figures.training_curves(r.curves or {}, e)
