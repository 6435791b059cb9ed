"""The Over-refinement tab: quality against refiner NFE, refinement at equal NFE, the α × NFE map and the
overshoot."""

from __future__ import annotations


import gradio as gr
import torch

from bfr_core.views.sweep import (
    SWEEP_NFES,
    drift_from_base,
    lfr_drift,
    load_sweep,
    nfe_sweep,
)

from .. import figures, pictures, registry
from ..memo import single_flight
from ..policy import MAX_SEED, as_alpha, user_errors
from ..widgets import ALPHA_DEFAULT, Built, Page, bundle_and_alpha, on, stored_view

from .overrefine_views import (
    AB_DEFAULTS,
    AB_ROWS,
    MAX_OVERSHOOT_UI,
    OVERSHOOT_DEFAULTS,
    ab_compare,
    alpha_map,
    overshoot,
    view_buttons,
    warm_overshoot,
    worth_nfe,
)


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

PANELS_BELOW = ("worth chart", "worth text", "A", "B", "A/B text", "α map", "α map text", "overshoot", "text")

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
    if source == "precomputed" and (stored_for(stored, a) is None):
        raise ValueError(
            f"bundle {bundle!r} stores no curves"
            + (f" at α = {a:g} (they are at α = {stored['alpha']:g})" if stored is not None else "")
            + f": choose 'measure live' to measure them now ({LIVE_SWEEP_SAMPLES} samples; minutes on a CPU)"
        )
    if source == "precomputed":
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


def stored_for(stored: dict | None, alpha: float | None) -> dict | None:
    """The stored sweep when it was measured at ``alpha`` (any α for a fixed-α LFR), else None."""
    if stored is None or alpha is None or stored["alpha"] is None or abs(stored["alpha"] - alpha) < 1e-9:
        return stored
    return None


def opened_overrefine(bundle, alpha):
    """What a shared link to this tab shows at once: the stored curves when the bundle has them at this α
    (never a live measurement: that is asked for), else the panels left empty."""
    pipe = registry.pipeline(bundle)
    a = as_alpha(alpha) if pipe.bundle.alpha_range() else None
    if stored_for(load_sweep(pipe.bundle), a) is None:
        return gr.update(), gr.update(), gr.update()
    return overrefine(bundle, alpha, "precomputed")


def cleared(bundle, alpha):
    """A bundle change empties every panel of the tab (the note above the views says what this bundle
    lacks), then shows the new bundle's stored curves when it has them."""
    shown = opened_overrefine(bundle, alpha)
    if all(isinstance(x, dict) for x in shown):  # nothing stored to show: empty those panels too
        shown = (None, None, None)
    return (*shown, *[None] * len(PANELS_BELOW))


def build(page: Page) -> Built:
    demo = page.demo
    gr.Markdown(TEXT)
    with gr.Row():
        o_bundle, o_alpha = bundle_and_alpha(page)
        o_source = gr.Radio(
            [
                ("stored at build time (instant)", "precomputed"),
                (f"measure live, {LIVE_SWEEP_SAMPLES} samples (minutes on a CPU)", "live"),
            ],
            value="precomputed",
            label="curves",
        )
        o_btn = gr.Button("Show", variant="primary")
    o_plot = gr.Plot(label="metric vs NFE", elem_id="overrefine-curves")  # the full width: it is read
    with gr.Row():
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
    o_worth, worth_plot, worth_md = stored_view(
        WORTH_TEXT, "Compare at equal NFE", "equal total NFE", worth_nfe, o_bundle
    )
    AB = AB_DEFAULTS
    with gr.Row():
        ab_a = gr.Dropdown(list(AB_ROWS), value=AB["a"], label="A (a row of the chart)")
        ab_b = gr.Dropdown(list(AB_ROWS), value=AB["b"], label="B")
        ab_seed = gr.Number(AB["seed"], minimum=0, maximum=MAX_SEED, label="noise seed")
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
    o_alpha_map, map_plot, map_md = stored_view(
        ALPHA_MAP_TEXT, "Show the α × NFE map", "α × NFE", alpha_map, o_bundle
    )
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
    on(  # the lesson says to drag the slider: it answers on release
        [o_shoot.click, o_factor.release],
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
    below = [worth_plot, worth_md, ab_img_a, ab_img_b, ab_md, map_plot, map_md, o_shoot_img, o_shoot_md]
    assert len(below) == len(PANELS_BELOW)
    on([o_bundle.input], cleared, [o_bundle, o_alpha], [o_plot, o_drift, o_lines, *below])
    controls = {"o_bundle": o_bundle, "o_alpha": o_alpha, "o_source": o_source, "o_factor": o_factor}
    opened = [
        (opened_overrefine, [o_bundle, o_alpha], [o_plot, o_drift, o_lines], ()),
        (ab_compare, [o_bundle, ab_a, ab_b, ab_seed], [ab_img_a, ab_img_b, ab_md], ("ab_a", "ab_b")),
    ]
    return Built({**controls, "ab_a": ab_a, "ab_b": ab_b, "ab_seed": ab_seed}, on_open=opened)


def warm(bundle: str) -> None:
    """The drift strip and the overshoot rows at the initial α (computed in the background at start-up)."""
    warm_overrefine(bundle)
    warm_overshoot(bundle)
