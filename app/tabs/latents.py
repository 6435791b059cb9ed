"""The Latents tab: prior draws, the biased latents (real images inverted) and their LFR refinement on
one map."""

from __future__ import annotations

import gradio as gr
import torch

from bfr_core.views.bias_plane import COLLAPSE_RATIO, contraction, plane_distances
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
    "latents**) and the LFR's refinement of those same prior draws (crosses), at the LFR's α and NFE. "
    "**The bias plane** (first map) has axes you can name: ‖z‖/√d, and the RMS of z in the pixels where "
    "the biased latents vary least (for MNIST, the empty border). Prior draws sit around (1, 1); the "
    "biased latents lower; a good LFR moves its crosses onto the rings, and a collapse (one Euler step) "
    "shrinks them into a clump below the rings, where no real latent lies. Distances on this plane keep "
    "the order of the distances in all d dimensions (printed below it). **The UMAP** (second map) keeps "
    "*neighbours*, not distances: a cross can sit by its own grey draw even when the refined cloud as a "
    "whole matches the biased one. **Click a ring** on either map to see the real image behind it, its "
    "latent decoded back, that latent moved by the LFR, and its nearest training images."
)


@user_errors
def latents(bundle, alpha, lfr_nfe, progress=gr.Progress()):
    """The bias plane and the UMAP of prior draws, biased latents and the LFR's refinement of the prior draws
    at the current α and NFE, with the distances in d dimensions and on the plane, a collapse warning, the
    distribution of ‖z‖/√d of each cloud and (images) the per-pixel variance of the biased latents."""
    pipe = registry.pipeline(bundle)
    setting, alpha_arg, nfe_arg = None, None, None
    if pipe.bundle.has("lfr"):
        *_, s = request(bundle, mode="lfr", lfr_nfe=lfr_nfe, alpha=alpha)
        default = pipe.resolve(Settings(mode="lfr"))
        alpha_arg = None if s.alpha == default.alpha else s.alpha
        nfe_arg = None if (s.lfr_solver, s.lfr_nfe) == (default.lfr_solver, default.lfr_nfe) else s.lfr_nfe
        setting = f"LFR α={s.alpha:g}, {s.lfr_solver} {s.lfr_nfe} NFE"
    progress(0.05, desc="refining the prior draws for the bias plane")
    plane = registry.bias_plane_of(bundle, alpha_arg, nfe_arg)
    lmap = registry.latent_map(bundle, alpha_arg, nfe_arg)
    if not lmap.fitted:
        progress(
            0.3, desc="fitting UMAP on prior, biased and refined latents (a setting the stored map lacks)"
        )
        lmap.fit()
    labels_b = lmap.biased_labels if lmap.biased_labels is not None else torch.zeros(len(lmap.biased_xy))
    drawn = pipe.labels_for(len(lmap.prior), None)
    drawn = torch.zeros(len(lmap.prior)) if drawn is None else drawn
    suffix = f" · {setting}" if setting else ""
    plane_fig = figures.latent_scatter(
        plane["prior"],
        plane["biased"],
        labels_b[: len(plane["biased"])],
        plane["refined"],
        None if plane["refined"] is None else drawn[: len(plane["refined"])],
        f"the bias plane<br><sup>distances keep their d-dimensional order{suffix}</sup>",
        axes=plane["axes"],
    )
    umap_title = f"UMAP: neighbours, not distances<br><sup>all three clouds{suffix}</sup>"
    if lmap.refined_xy is not None and len(lmap.refined_xy) < len(lmap.prior):
        umap_title += f" · refined: the first {len(lmap.refined_xy)} of {len(lmap.prior)} draws shown"
    refined_labels = None if lmap.refined_xy is None else drawn[: len(lmap.refined_xy)]
    umap_fig = figures.latent_scatter(
        lmap.prior_xy, lmap.biased_xy, labels_b, lmap.refined_xy, refined_labels, umap_title
    )
    clouds = lmap.cloud_norms()
    summary = distance_lines(lmap.distances(), plane, clouds)
    norms = figures.norm_histogram(clouds)
    link = urlstate.share_link("latents", l_bundle=bundle, l_alpha=alpha, l_nfe=lfr_nfe)
    variance = None
    if len(pipe.bundle.shape) == 3:  # where the bias lives: per-pixel variance of the biased latents
        var = torch.from_numpy(lmap.biased).view(-1, *pipe.bundle.shape).var(0).mean(0).numpy()
        title = f"per-pixel variance of the biased latents (prior: 1; mean {var.mean():.2f})"
        variance = figures.variance_map(var, title)
    return plane_fig, umap_fig, norms, f"{summary} [link to this view]({link})", variance


def distance_lines(d: dict | None, plane: dict, clouds: dict) -> str:
    """The numbers under the maps: energy distances in d dimensions and on the bias plane (whose order
    agrees), the mean ‖z‖/√d of each cloud, and a warning when the refined cloud has collapsed."""
    if d is None:
        return ""
    flat = plane_distances(plane["prior"], plane["biased"], plane["refined"])
    closer = "biased" if d["refined_to_biased"] < d["refined_to_prior"] else "prior"
    text = (
        "Energy distance in all d dimensions (lower = closer): refined → biased "
        f"**{d['refined_to_biased']:.3f}**, "
        f"refined → prior **{d['refined_to_prior']:.3f}**; prior → biased {d['prior_to_biased']:.3f}. The "
        f"refined cloud is closer to the **{closer}** one. On the bias plane: refined → biased "
        f"{flat['refined_to_biased']:.3f}, refined → prior {flat['refined_to_prior']:.3f}. Mean ‖z‖/√d: "
        + ", ".join(f"{k} {float(v.mean()):.3f}" for k, v in clouds.items())
        + "."
    )
    ratio = contraction(plane)
    if ratio is not None and ratio < COLLAPSE_RATIO:
        text = (
            f"⚠️ **Collapse**: the refined draws' ‖z‖/√d is {ratio:.0%} of the biased latents' — the LFR has "
            "shrunk them onto a mean (one Euler step lands on a conditional mean), not moved them onto the "
            "biased cloud. Their images look clean but alike: see the diversity on the Refine tab.\n\n" + text
        )
    return text


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
    with gr.Row():
        l_plot = gr.Plot(label="the bias plane", elem_id="latent-map")
        l_umap = gr.Plot(label="UMAP", elem_id="latent-umap")
    with gr.Row():
        l_pick = gr.Number(
            value=0,
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
    l_inputs, l_outputs = [l_bundle, l_alpha, l_nfe], [l_plot, l_umap, l_norms, l_md, l_var]
    on(
        [l_btn.click, l_alpha.release, l_nfe.release, l_bundle.input],
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
    on([l_bundle.input], lambda: (None, ""), None, [l_pick_img, l_pick_md])  # another bundle's latent
    opened = [
        (latents, l_inputs, l_outputs, ()),
        (inspect_latent, [l_bundle, l_pick, l_alpha, l_nfe], [l_pick_img, l_pick_md], ("l_pick",)),
    ]
    controls = {"l_bundle": l_bundle, "l_alpha": l_alpha, "l_nfe": l_nfe, "l_pick": l_pick}
    return Built(controls, on_open=opened)


def warm(bundle: str) -> None:
    registry.latent_map(bundle)
    registry.bias_plane_of(bundle)
