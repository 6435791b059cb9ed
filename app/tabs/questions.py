"""The Open questions tab: what the paper leaves open, answered with this bundle's stored measurements —
which α the LFR should mix in (estimated from the latents, and how that estimate fared), where to stop the LFR
(the stop rule, beside the paper's default) and how much non-invertibility the LFR
survives (its gain against the inversion's round trip, with the bundle's own round trip marked). Nothing is
computed here: each view reads what the bundle stores, and says which command stores it when it is missing."""

from __future__ import annotations

import math

import gradio as gr
import plotly.graph_objects as go

from bfr_core.views.alpha_suggestion import load_alpha_suggestion
from bfr_core.views.invertibility import failure_points, load_invertibility, own_round_trip
from bfr_core.views.stop_rule import load_stop_rule, mean_sd, summary

from .. import registry, urlstate
from ..policy import user_errors
from ..widgets import Built, Page, on

TITLE, ID = "Open questions", "questions"
TEXT = (
    "**What the paper leaves open, measured.** *Which α?* The LFR mixes prior noise into its targets with "
    "a coefficient α that the paper tunes by grid search; here it is estimated from the inverted latents "
    "alone. "
    "*Where should the LFR stop?* The paper ends it at t = 1 with "
    "one RK4 step; the stop rule tries other ends on held-out training images and keeps the default unless "
    "another beats it on both metrics, on every seed, beyond the seed spread. *Does the LFR need an exact "
    "inversion?* It learns to move prior noise to the inverted latents G⁻¹(x); below, LFRs trained on "
    "latents made worse on purpose show how its gain falls as the round trip ‖G(G⁻¹(x)) − x‖ grows."
)
GAIN_METRICS = ("fid", "fid2")


@user_errors
def alpha_view(bundle) -> str:
    """The α estimated from the bundle's inverted latents, the statistics behind it, and its check."""
    from .overrefine_views import validation_text

    b = registry.pipeline(bundle).bundle
    stored = load_alpha_suggestion(b)
    if stored is None:
        if b.latents is None and b.file("latents") is None:
            return f"`{bundle}` has no inverted latents: the LFR, and its α, need them."
        command = f"python -m bfr_core suggest-alpha --bundle checkpoints/{bundle}"
        return f"`{bundle}` stores no α estimate: `{command}`."
    stats = stored["latent_stats"]
    others = ", ".join(
        f"{k.replace('_', ' ')} {v:.2f}" for k, v in stored["estimates"].items() if k != stored["suggested"]
    )
    return (
        f"**Suggested α = {stored['alpha']:.2f}** — 1 − the inverted latents' mean per-dimension variance "
        f"({stats['var_mean']:.3f}; N(0, I) has 1), from {stored['points']} latents, no LFR trained "
        f"(`{stored['command']}`). Rejected alternative: {others}."
        + validation_text(stored)
        + (
            ""
            if stored.get("validation")
            else " Not checked on this bundle yet (`python -m bench.suggest_alpha`: an LFR over α ∈ [0, 1])."
        )
    )


def stop_rule_table(stored: dict) -> str:
    """The rule's evidence: every end's mean ± sd over seeds per metric, the default and the choice marked."""
    metrics = stored["metrics"]
    lines = [
        summary(stored),
        "",
        "| LFR end | " + " | ".join(m.upper() for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for row, runs in stored["scores"].items():
        mark = " ← rule" if row == stored["choice"] else ""
        mark += " (paper's default)" if row == stored["default"] else ""
        lines.append(f"| {row}{mark} | " + " | ".join(mean_sd([r[m] for r in runs]) for m in metrics) + " |")
    return "\n".join(lines)


@user_errors
def stop_rule_view(bundle):
    stored = load_stop_rule(registry.pipeline(bundle).bundle)
    if stored is None:
        return (
            f"`{bundle}` stores no stop rule: `python -m bfr_core stop-rule --bundle checkpoints/{bundle}`."
        )
    return stop_rule_table(stored)


def gain_figure(stored: dict, own: float | None, picked: str | None) -> go.Figure:
    """LFR gain (%) against the round trip (log scale): one line per kind of damage and metric (FID solid,
    FID2 dashed); the bundle's own round trip as a dashed vertical line and the picked point circled."""
    fig = go.Figure()
    for kind in dict.fromkeys(p["kind"] for p in stored["points"]):
        points = sorted((p for p in stored["points"] if p["kind"] == kind), key=lambda p: p["round_trip_mae"])
        for m, dash in zip(GAIN_METRICS, ("solid", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=[p["round_trip_mae"] for p in points],
                    y=[p["gain_pct"][m] for p in points],
                    mode="lines+markers",
                    line={"dash": dash},
                    name=f"{kind} · {m.upper()}",
                    text=[p["label"] for p in points],
                    hovertemplate="%{text}: round trip %{x:.3g}, gain %{y:.1f}%<extra></extra>",
                )
            )
    chosen = next((p for p in stored["points"] if p["label"] == picked), None)
    if chosen is not None:
        fig.add_trace(
            go.Scatter(
                x=[chosen["round_trip_mae"]] * 2,
                y=[chosen["gain_pct"][m] for m in GAIN_METRICS],
                mode="markers",
                marker={"size": 16, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
                name=f"picked: {picked}",
            )
        )
    if own is not None:
        fig.add_vline(x=own, line_dash="dash", annotation_text="this bundle's round trip")
    fig.add_hline(y=0, line_color="grey")
    fig.update_layout(
        xaxis={"type": "log", "title": "round trip: mean |G(G⁻¹(x)) − x| per pixel"},
        yaxis={"title": "LFR gain over the base (%)"},
        height=400,
        margin={"t": 30},
    )
    return fig


@user_errors
def invertibility_view(bundle, picked):
    b = registry.pipeline(bundle).bundle
    stored = load_invertibility(b)
    if stored is None:
        text = (
            f"`{bundle}` stores no invertibility curve: `python -m bench.invertibility --bundle "
            f"checkpoints/{bundle}`, then `--store`."
        )
        return gr.update(choices=[], value=""), None, text
    labels = [p["label"] for p in sorted(stored["points"], key=lambda p: p["round_trip_mae"])]
    picked = picked if picked in labels else labels[0]
    p = next(q for q in stored["points"] if q["label"] == picked)
    own = own_round_trip(b)
    fails = failure_points(stored["points"])
    gains = " / ".join(f"{p['gain_pct'][m]:+.1f}%" for m in GAIN_METRICS)
    where = "; ".join(
        f"{kind}: from {f['label']} (round trip {f['round_trip_mae']:.3g})"
        if f
        else f"{kind}: helps throughout"
        for kind, f in fails.items()
    )
    text = (
        f"**{p['kind']}: {p['label']}** — round trip {p['round_trip_mae']:.3g}; the LFR's gain over the base "
        f"(FID / FID2, positive: lower FID) **{gains}**, {p['regime']} ({len(stored['seeds'])} seeds of "
        f"{stored['n']} samples, held-out training images). Where the LFR stops helping for good — {where}."
        + (
            f" This bundle's own latents round-trip to {own:.3g}."
            if own is not None and math.isfinite(own)
            else ""
        )
    )
    link = urlstate.share_link(ID, q_bundle=bundle)
    return (
        gr.update(choices=labels, value=picked),
        gain_figure(stored, own, picked),
        f"{text}\n\n[link]({link})",
    )


def build(page: Page) -> Built:
    gr.Markdown(TEXT)
    q_bundle = gr.Dropdown(page.bundles, value=page.first, label="bundle", min_width=320)
    gr.Markdown("### Which α should the LFR mix in?")
    alpha = gr.Markdown()
    gr.Markdown("### Where should the LFR stop?")
    rule = gr.Markdown()
    gr.Markdown("### How much non-invertibility does the LFR survive?")
    with gr.Row():
        point = gr.Dropdown([], value="", label="latents trained on", allow_custom_value=True)  # never null
    with gr.Row():
        curve = gr.Plot(label="LFR gain vs round trip")
        curve_md = gr.Markdown()
    on([q_bundle.change], alpha_view, [q_bundle], [alpha], "alpha_suggestion")
    on([q_bundle.change], stop_rule_view, [q_bundle], [rule], "stop_rule")
    on(
        [q_bundle.change, point.input],
        invertibility_view,
        [q_bundle, point],
        [point, curve, curve_md],
        "invertibility",
    )
    loads = [
        (alpha_view, [q_bundle], [alpha]),
        (stop_rule_view, [q_bundle], [rule]),
        (invertibility_view, [q_bundle, point], [point, curve, curve_md]),
    ]
    return Built({"q_bundle": q_bundle}, on_load=loads)
