"""The Latents tab: prior draws, the biased latents (real images inverted) and their LFR refinement on
one map."""

from __future__ import annotations

import gradio as gr
import torch

from bfr_core.views.latent_view import MAP_NFES
from bfr_core.pipeline import Settings
from bfr_core.views.roundtrip import decode_latent, shell_width

from .. import figures, pictures, registry, urlstate
from ..policy import MAX_NFE, as_alpha, as_int, user_errors
from ..widgets import Built, Page, bundle_and_alpha, on
from .inspector import latent_line, round_trip_strip
from .refine import request

TITLE, ID = "Latents", "latents"
TEXT = (
    "Prior draws (grey), real images inverted through the base ODE (coloured rings: the **biased "
    "latents**) and the LFR's refinement of those same prior draws (crosses). One UMAP, shipped with "
    "the bundle, is fitted on the prior, the biased latents and the refined draws at every α and NFE of "
    "these sliders together: move a slider and the refined cloud moves across a fixed map, with no "
    "cloud placed by extrapolation (an α off the slider's grid is fitted anew). UMAP keeps "
    "*neighbours*: where the LFR moves each draw less than the gap to any real latent (on mnist at 4 "
    "RK4 steps), a cross sits by its own grey draw even though the refined cloud *as a whole* now "
    "matches the biased one; at 1 Euler step every cross collapses into one clump. The histogram of "
    "‖z‖/√d and the energy distances below are the faithful view of where the refined latents sit. "
    "**Click a ring** to see the real image behind it, its latent decoded back, that latent moved by "
    "the LFR, and its nearest training images."
)


@user_errors
def latents(bundle, alpha, lfr_nfe, progress=gr.Progress()):
    """UMAP of prior vs biased latents with LFR-refined latents at the current α and NFE, and the
    faithful companions: the distribution of ‖z‖/√d of each cloud, their energy distances, and (images)
    the per-pixel variance of the biased latents."""
    pipe = registry.pipeline(bundle)
    title = "latent space (UMAP)"
    alpha_arg = nfe_arg = None
    if pipe.bundle.has("lfr"):
        *_, s = request(bundle, 0, 1, None, None, 20, "lfr", "ode", lfr_nfe, alpha, 4)
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
    return pictures.png_file(
        pictures.picture_rows(strip)
    ), f"**{captions}**\n\n{text}\n\n[link to this view]({link})"


def build(page: Page) -> Built:
    cached = [registry.pipeline(b).bundle.latents for _, b in page.bundles]
    pick_max = max((len(c["z"]) for c in cached if c is not None), default=1) - 1  # a biased latent's #
    gr.Markdown(TEXT)
    with gr.Row():
        l_bundle, l_alpha = bundle_and_alpha(page)
        l_nfe = gr.Slider(MAP_NFES[0], MAP_NFES[-1], value=4, step=1, label="LFR NFE")
        l_btn = gr.Button("Show latents", variant="primary")
    l_plot = gr.Plot(label="latents", elem_id="latent-map")
    with gr.Row():
        l_pick = gr.Number(
            value=0,
            precision=0,
            minimum=0,
            maximum=pick_max,
            label="biased latent # (click a ring on the map, or type its number)",
            elem_id="latent-pick",
        )
        l_pick_go = gr.Button("Inspect this latent", elem_id="latent-pick-go")
    with gr.Row():
        l_pick_img = gr.Image(label="its round trip", type="filepath", format="png")
        l_pick_md = gr.Markdown()
    with gr.Row():
        l_norms = gr.Plot(label="‖z‖/√d")
        l_var = gr.Plot(label="where the bias lives")
    l_md = gr.Markdown()
    l_inputs, l_outputs = [l_bundle, l_alpha, l_nfe], [l_plot, l_norms, l_md, l_var]
    on(
        [l_btn.click, l_alpha.release, l_nfe.release],
        latents,
        l_inputs,
        l_outputs,
        "latents",
    )
    on(
        [l_pick_go.click, l_pick.submit],
        inspect_latent,
        [l_bundle, l_pick, l_alpha, l_nfe],
        [l_pick_img, l_pick_md],
        "inspect_latent",
    )
    return Built({"l_bundle": l_bundle, "l_alpha": l_alpha, "l_nfe": l_nfe, "l_pick": l_pick})


def warm(bundle: str) -> None:
    registry.latent_map(bundle)
