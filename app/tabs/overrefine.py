"""The Over-refinement tab: quality against refiner NFE, refinement at equal NFE, the α × NFE map and the
overshoot."""

from __future__ import annotations

import functools

import gradio as gr
import torch

from bfr_core.views.budget import EXTRA_BASE_NFE, budget_rows, load_budget
from bfr_core.eval.evaluate import describe
from bfr_core.refiners import REFINERS
from bfr_core.eval.runner import run_rows
from bfr_core.views.sweep import (
    OVERSHOOT_FACTORS,
    OVERSHOOT_STEP,
    SWEEP_NFES,
    drift_from_base,
    lfr_drift,
    lfr_overshoots,
    load_alpha_map,
    load_overshoot,
    load_sweep,
    nfe_sweep,
)

from .. import figures, pictures, registry, urlstate
from ..memo import single_flight
from ..policy import MAX_SEED, as_alpha, as_int, user_errors
from ..widgets import ALPHA_DEFAULT, Built, Page, bundle_and_alpha, on, stored_view

TITLE, ID = "Over-refinement", "overrefine"
TEXT = (
    "Quality (FID on the bundle's classifier features vs the held-out test split) as the refiners "
    "take more Euler steps; the stored curves were measured on more samples when the bundle was built"
    " (their command is in the title), and 8 samples as LFR steps grow (top row: base; each next row "
    "one more NFE, as listed: 1, 2, 3, 4, 6, 8, 10)."
)
WORTH_TEXT = (
    "**Is refinement worth its NFE?** Spend the same extra network evaluations either on more base "
    "solver steps or on a refiner after the base, on the same noise (stored when the bundle was "
    "built). If more steps do not help, the bias is not discretisation: it is in the model, and only a "
    "refiner removes it. Below the chart, pick two of its rows and see them side by side on the same "
    "16 noise draws (e.g. 4 more base steps against the LFR's 4 evaluations)."
)
ALPHA_MAP_TEXT = (
    "**Over-refinement map.** The LFR's quality over its mixing coefficient α and its number of Euler "
    "steps, on the same noise (stored when the bundle was built; bundles whose LFR takes α as an input)."
    " The outlined cell is the best; the paper's claim is that it sits at few steps."
)
OVERSHOOT_TEXT = (
    "**Provoke it.** Integrate the LFR *past* t = 1, where it was never trained: an overshoot factor "
    "of 1.5 runs its flow to t = 1.5. This is extrapolation, labelled as such; watch the samples "
    "drift and the metric move, beside the trained setting on the same noise."
)


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
        drift = pictures.png_file(pictures.picture_rows(rows))
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
    images = (pictures.png_file(pictures.grid(runs[side].x)) for side in "AB")
    return (*images, text)


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
    return pictures.png_file(pictures.picture_rows(shown)), text


def build(page: Page) -> Built:
    demo = page.demo
    gr.Markdown(TEXT)
    with gr.Row():
        o_bundle, o_alpha = bundle_and_alpha(page)
        o_source = gr.Radio(
            [
                ("stored at build time (instant)", "precomputed"),
                ("measure live, 500 samples", "live"),
            ],
            value="precomputed",
            label="curves",
        )
        o_btn = gr.Button("Show", variant="primary")
    with gr.Row():
        o_plot = gr.Plot(label="metric vs NFE")
        o_drift = gr.Image(
            label="LFR drift with NFE (rows: base, then 1…10 Euler steps)",
            type="filepath",
            format="png",
        )
        o_lines = gr.Plot(label="drift per sample")
    on(
        [o_btn.click],
        overrefine,
        [o_bundle, o_alpha, o_source],
        [o_plot, o_drift, o_lines],
        "overrefine",
    )
    o_views_note = gr.Markdown()  # which views below this bundle cannot run, and why
    o_worth = stored_view(WORTH_TEXT, "Compare at equal NFE", "equal total NFE", worth_nfe, o_bundle)
    AB = AB_DEFAULTS
    with gr.Row():
        ab_a = gr.Dropdown(list(AB_ROWS), value=AB["a"], label="A (a row of the chart)")
        ab_b = gr.Dropdown(list(AB_ROWS), value=AB["b"], label="B")
        ab_seed = gr.Number(AB["seed"], precision=0, minimum=0, maximum=MAX_SEED, label="noise seed")
        ab_btn = gr.Button("A/B on the same noise", variant="secondary")
    with gr.Row():
        ab_img_a = gr.Image(label="A", type="filepath", format="png")
        ab_img_b = gr.Image(label="B", type="filepath", format="png")
    ab_md = gr.Markdown()
    on(
        [ab_btn.click],
        ab_compare,
        [o_bundle, ab_a, ab_b, ab_seed],
        [ab_img_a, ab_img_b, ab_md],
        "ab_compare",
    )
    o_alpha_map = stored_view(ALPHA_MAP_TEXT, "Show the α × NFE map", "α × NFE", alpha_map, o_bundle)
    gr.Markdown(OVERSHOOT_TEXT)
    with gr.Row():
        o_factor = gr.Slider(
            1.0,
            MAX_OVERSHOOT_UI,
            value=OVERSHOOT_DEFAULTS["factor"],
            step=0.25,
            label="overshoot: integrate LFR to t =",
        )
        o_shoot = gr.Button("Overshoot", variant="secondary")
    with gr.Row():
        o_shoot_img = gr.Image(label="base / LFR to t = 1 / LFR to t = overshoot", type="filepath")
        o_shoot_md = gr.Markdown()
    o_outputs = [o_shoot_img, o_shoot_md]
    on(
        [o_shoot.click],
        overshoot,
        [o_bundle, o_alpha, o_factor],
        o_outputs,
        "overshoot",
    )
    on(  # buttons a bundle cannot use are disabled, with the reason above them
        [o_bundle.change, demo.load],
        view_buttons,
        [o_bundle],
        [o_worth, ab_btn, o_alpha_map, o_shoot, o_views_note],
    )
    controls = {"o_bundle": o_bundle, "o_alpha": o_alpha, "o_source": o_source, "o_factor": o_factor}
    return Built({**controls, "ab_a": ab_a, "ab_b": ab_b, "ab_seed": ab_seed})


def warm(bundle: str) -> None:
    """The drift strip and the overshoot rows at the initial α (computed in the background at start-up)."""
    warm_overrefine(bundle)
    warm_overshoot(bundle)
