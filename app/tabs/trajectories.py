"""The Trajectories tab: the same samples at time t of the base solve, the LFR path and the DFR path."""

from __future__ import annotations

import functools

import gradio as gr
import torch

from bfr_core.generative.ode import grid_steps
from bfr_core.pipeline import Settings
from bfr_core.views.trajectories import frame_index, pipeline_paths

from .. import pictures, registry, urlstate
from ..policy import MAX_SEED, as_int, as_time, user_errors
from ..scrubber import TIME_STEP, played, step_back, step_forward
from ..service import COMPUTE
from ..widgets import Built, Page, on

TITLE, ID = "Trajectories", "trajectories"
DEFAULTS = {"seed": 0, "base_nfe": 20, "refiner_nfe": 4, "t": 1.0}  # initial values, warmed at start-up
TEXT = (
    "**Scrub the solve.** The same 8 samples at time t of three paths: the base ODE from noise (t = "
    "0) to its samples (t = 1), the LFR's path in latent space (each latent decoded by the base), and"
    " the DFR's path from the base's samples to the refined ones. Bias is drift along the solve: with"
    " few base steps, watch where the images depart (drag t, step it, or ▶ play it from 0 to 1). Each "
    "path changes only at its solver's grid times."
)


TRAJECTORY_SAMPLES = 8


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
    return pictures.png_file(
        pictures.picture_rows(torch.stack(rows))
    ), f"{text} · [link to this view]({link})"


@user_errors
def play(bundle, seed, base_nfe, refiner_nfe):
    """Play the solve: t from 0 to 1 in scrubber steps, streaming (t, picture, text) for each frame; the
    paths are solved once (``cached_paths``), so a frame costs a picture."""
    yield from played(lambda t: trajectory.__wrapped__(bundle, seed, base_nfe, refiner_nfe, t))


def build(page: Page) -> Built:
    T = DEFAULTS
    gr.Markdown(TEXT)
    image_only = page.bundles_where(lambda b: len(b.shape) == 3)
    with gr.Row():
        t_bundle = gr.Dropdown(
            image_only, value=image_only[0][1] if image_only else None, label="bundle", scale=2, min_width=320
        )
        t_seed = gr.Number(
            value=DEFAULTS["seed"],
            minimum=0,
            maximum=MAX_SEED,
            label="seed",
        )
        t_base = gr.Slider(4, 40, value=T["base_nfe"], step=4, label="base NFE (RK4)")
        t_nfe = gr.Slider(1, 10, value=T["refiner_nfe"], step=1, label="refiner NFE (Euler)")
    with gr.Row():
        t_time = gr.Slider(0, 1, value=T["t"], step=TIME_STEP, label="t")
        t_back = gr.Button("◀ step")
        t_fwd = gr.Button("step ▶")
        t_play = gr.Button("▶ play")
        t_go = gr.Button("Solve", variant="primary")
    t_img = gr.Image(label="base / LFR / DFR at time t", type="filepath", format="png")
    t_md = gr.Markdown()
    t_inputs = [t_bundle, t_seed, t_base, t_nfe, t_time]
    t_triggers = [t_go.click, t_time.release, t_base.release, t_nfe.release, t_bundle.change]
    on([*t_triggers, t_seed.submit], trajectory, t_inputs, [t_img, t_md], "trajectory")
    on([t_play.click], play, t_inputs[:4], [t_time, t_img, t_md], "play")
    for button, step in ((t_back, step_back), (t_fwd, step_forward)):
        button.click(step, [t_time], [t_time], api_name=False, **COMPUTE).then(
            trajectory, t_inputs, [t_img, t_md], api_name=False, **COMPUTE
        )
    controls = {"t_bundle": t_bundle, "t_seed": t_seed, "t_base": t_base, "t_nfe": t_nfe, "t_time": t_time}
    return Built(controls, on_open=[(trajectory, t_inputs, [t_img, t_md], ())])


def warm(bundle: str) -> None:
    trajectory(bundle, **DEFAULTS)
