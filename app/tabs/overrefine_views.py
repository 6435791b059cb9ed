"""The Over-refinement tab's views of what a bundle stores: which of them a bundle can run, refinement at
equal NFE and its same-noise A/B, the α × NFE map, and the overshoot past t = 1."""

from __future__ import annotations

import functools

import gradio as gr
import torch

from bfr_core.views.budget import EXTRA_BASE_NFE, budget_rows, load_budget
from bfr_core.eval.evaluate import describe
from bfr_core.refiners import REFINERS
from bfr_core.eval.runner import run_rows
from bfr_core.views.alpha_suggestion import load_alpha_suggestion
from bfr_core.views.stop_rule import load_stop_rule, summary
from bfr_core.views.sweep import (
    OVERSHOOT_FACTORS,
    OVERSHOOT_STEP,
    lfr_overshoots,
    load_alpha_map,
    load_overshoot,
)

from .. import figures, pictures, registry, urlstate
from ..memo import single_flight
from ..policy import MAX_SEED, as_alpha, as_int, user_errors
from ..widgets import ALPHA_DEFAULT


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
        f"{best['quality']:.3g} against the base's {m['base']:.3g} ({stored['n']} samples, stored by "
        f"`{stored['command']}`). "
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
    suggestion = load_alpha_suggestion(pipe.bundle)
    if suggestion is not None:
        a = suggestion["alpha"]
        text += (
            f"\n\nThe α estimated from this bundle's inverted latents alone (no LFR trained; `bfr "
            f"suggest-alpha`: 1 − their mean per-dimension variance) is **{a:.2f}**"
            + (
                " (the dashed line)."
                if figures.suggested_row(m["alphas"], a) is not None
                else f", outside this map's α range ({m['alphas'][0]:g} … {m['alphas'][-1]:g})."
            )
            + validation_text(suggestion)
        )
    return figures.alpha_nfe_heatmap(stored, suggestion and suggestion["alpha"]), text


def validation_text(suggestion: dict) -> str:
    """How the estimate fared where it was checked (``bench/suggest_alpha --store``), or ""."""
    v = suggestion.get("validation")
    if not v:
        return ""
    fared = "; ".join(
        f"{m.upper()} best at α = {x['best_alpha']:g} ({x['best']:.2f}), "
        f"at the estimate {x['at_estimate']:.2f} ({x['loss']:+.1%})"
        for m, x in v["losses"].items()
    )
    base = v.get("base", {})  # the same draws without an LFR (checks stored since it was recorded)
    beaten = [m for m, x in v["losses"].items() if m in base and base[m] < x["best"]]
    hurts = (
        f" Without an LFR the base scores {', '.join(f'{m.upper()} {base[m]:.2f}' for m in beaten)}: "
        "better than every α here, so on this bundle the LFR hurts at any α and the best α is only the "
        "least harmful."
        if beaten
        else ""
    )
    return (
        f" Checked on an α-conditioned LFR at one RK4 step, α = {v['alphas'][0]:g} … {v['alphas'][-1]:g} "
        f"({len(v['seeds'])} seed(s) × {v['n']} samples against the {v['reference']}): {fared}.{hurts}"
    )


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
            " Better than t = 1 here: a sign that these Euler steps stop short of the correction the bias "
            "needs (under-correction, the opposite of over-refinement). One seed of few samples can mislead."
        )
    rule = load_stop_rule(registry.pipeline(bundle).bundle)
    text += "\n\n" + (
        summary(rule)
        if rule is not None
        else "This bundle has no stored stop rule: `bfr stop-rule --bundle …` chooses where to end its LFR "
        "over seeds under two metrics."
    )
    return pictures.png_file(pictures.picture_rows(shown)), text
