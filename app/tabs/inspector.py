"""The Inspect tab: one real test image through inversion, regeneration and the LFR, and the bias meter."""

from __future__ import annotations

import functools
import math

import gradio as gr
import torch

from bfr_core.generative.ode import FIXED_SOLVERS, grid_steps
from bfr_core.views.roundtrip import bias_meter, round_trip

from .. import figures, pictures, registry, urlstate
from ..policy import as_alpha, as_int, user_errors
from ..widgets import ALPHA_DEFAULT, Built, Page, on

TITLE, ID = "Inspect", "inspect"
DEFAULTS = {
    "index": 0,
    "solver": "rk4",
    "nfe": 20,
    "alpha": ALPHA_DEFAULT,
}  # initial values, warmed at start-up
TEXT = (
    "**One real image through the whole BFR idea.** A held-out test image is inverted through the "
    "base ODE (its *biased latent*), decoded back (how faithful is the round trip at this solver and "
    "NFE?), and decoded after the LFR moves its latent. Below, the **bias meter**: 64 real images "
    "inverted the same way, their ‖z‖/√d against the shell where N(0, I) draws live. Change the "
    "solver and NFE and watch the bias move: a histogram cannot invent structure."
)


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
        title="bias meter: ‖z‖/√d of inverted real images"
        f"<br><sup>{solver}, {nfe} NFE, against the prior's shell</sup>",
    )
    link = urlstate.share_link(
        "inspect", i_bundle=bundle, i_index=index, i_solver=solver, i_nfe=nfe, i_alpha=alpha
    )
    text += f"\n\n[link to this view]({link})"
    return pictures.png_file(pictures.picture_rows(strip)), text, hist


def build(page: Page) -> Built:
    I, alpha_max = DEFAULTS, page.alpha_max  # noqa: E741
    gr.Markdown(TEXT)
    image_bundles = page.bundles_where(lambda b: b.file("examples"))
    with gr.Row():
        i_bundle = gr.Dropdown(
            image_bundles,
            value=image_bundles[0][1] if image_bundles else None,
            label="bundle",
            scale=2,
            min_width=320,
        )
        i_index = gr.Slider(0, 255, value=I["index"], step=1, label="test image")
        i_solver = gr.Radio(list(FIXED_SOLVERS), value=I["solver"], label="inversion solver")
        i_nfe = gr.Slider(4, 40, value=I["nfe"], step=4, label="inversion NFE")
        i_alpha = gr.Slider(0, alpha_max, value=I["alpha"], step=0.05, label="α (LFR)")
        i_btn = gr.Button("Inspect", variant="primary")
    i_strip = gr.Image(label="round trip", type="filepath", format="png")
    with gr.Row():
        i_md = gr.Markdown()
        i_hist = gr.Plot(label="bias meter")
    i_inputs, i_outputs = [i_bundle, i_index, i_solver, i_nfe, i_alpha], [i_strip, i_md, i_hist]
    i_triggers = [i_btn.click, i_index.release, i_nfe.release, i_solver.change, i_bundle.input]
    on(i_triggers, inspect_example, i_inputs, i_outputs, "inspect")
    controls = {"i_bundle": i_bundle, "i_index": i_index, "i_solver": i_solver, "i_nfe": i_nfe}
    controls["i_alpha"] = i_alpha
    return Built(controls, on_open=[(inspect_example, i_inputs, i_outputs, ())])


def warm(bundle: str) -> None:
    inspect_example(bundle, **DEFAULTS)
