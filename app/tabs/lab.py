"""The bias lab: a short base trained live on 2-D points, its bias exposed by inversion and corrected by
LFR and DFR."""

from __future__ import annotations

import contextvars

import gradio as gr

from bfr_core.infra.data import TOY_SETS
from bfr_core.views.lab import DEFAULT_LAB, USER_POINTS, USER_POINTS_CHARS, cached_bias_lab, kept_bias_lab
from bfr_core.views.trajectories import frame_index

from .. import background, lab_figures
from ..policy import as_int, as_time, user_errors
from ..scrubber import TIME_STEP, played
from ..service import COMPUTE
from ..widgets import Built, Page, on

TITLE, ID = "Bias lab (2-D)", "lab"
MY_POINTS = "my points"  # the choice that trains on the visitor's pasted points
LAB_REDRAW_S = 0.5  # seconds between live redraws of the training curves
LAB_PANELS = 7  # the outputs before the training-curves plot
TEXT = (
    "Train a deliberately short base on a 2-D toy set **live**, expose its bias by inversion, then "
    "train LFR and DFR and watch them correct it (a few seconds on a laptop CPU). Look for: the "
    "base's points off the moons, the inverted latents that are *not* a round Gaussian, and the same "
    "points pulled back onto the data by DFR (grey paths)."
)
SCRUB_TEXT = (
    "**Scrub the lab's solves.** After *Train live*, move t or press play: the base ODE carries the "
    "same noise draws to its samples, the LFR carries them through latent space towards the biased "
    "latents, and the DFR carries the base's samples back onto the data. Watch where the short-trained "
    "base's points leave the data and where each refiner puts them back. (Paths drawn with 10 steps: "
    "RK4 for the base, Euler for the refiners.)"
)


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
        box = lab_figures.bounding_box(path.frames, reference)
        cloud = {reference_name: reference, f"{name.upper()} at t = {path.times[k]:.2f}": path.frames[k]}
        panels.append(lab_figures.toy_panel(cloud, title, box=box))
        notes.append(f"{name.upper()}: step {k} of {len(path.times) - 1}")
    return (*panels, f"**t = {t:.2f}** · " + " · ".join(notes))


def scrub_if_trained(toy, base_steps, refine_steps, points, t):
    """``lab_scrub`` when the lab of these settings has run, else the panels as they are (a visitor may have
    changed a setting while a shared link's lab was training)."""
    args = lab_request(toy, base_steps, refine_steps)
    if kept_bias_lab(*args, points if toy == MY_POINTS else None) is None:
        return [gr.update()] * (len(LAB_SCENES) + 1)
    return lab_scrub(toy, base_steps, refine_steps, points, t)


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
                progress=lambda f, text: (background.check(), progress(f, desc=text)),
                points=points if toy == MY_POINTS else None,
                curves=curves,
            )
        except Exception as e:  # noqa: BLE001 - re-raised in the request's own thread below
            outcome["error"] = e

    context = contextvars.copy_context()  # the request's context, so progress reaches this request's page
    worker = background.start(context.run, "bias-lab", train)  # a shutdown stops it (app.background)
    while worker.is_alive():
        worker.join(LAB_REDRAW_S)
        if worker.is_alive() and any(curves.values()):
            yield (*(gr.update() for _ in range(LAB_PANELS)), lab_figures.training_curves(curves))
    if "error" in outcome:
        raise outcome["error"]
    r = outcome["result"]
    e = r.energy
    data = lab_figures.toy_panel({"real": r.real, "base samples": r.generated}, "real vs short-trained base")
    lat = lab_figures.toy_panel(
        {
            "prior N(0, I)": r.prior,
            "biased latents G⁻¹(real)": r.biased_latents,
            "LFR latents": r.lfr_latents,
        },
        "latent space: inversion exposes the bias",
    )
    fixed = lab_figures.toy_panel(
        {
            "real": r.real,
            "base (before)": r.generated,
            "LFR (after)": r.lfr_points,
            "DFR (after)": r.dfr_points,
        },
        "the same samples before and after (grey: each DFR sample's path)",
        trajectory=r.dfr_trajectory,
    )
    bars = lab_figures.energy_bars(
        {"base": e["base"], "LFR": e["lfr"], "DFR": e["dfr"], "real training points": e["train"]}
    )
    lfr_field = lab_figures.field_panel(
        {"prior N(0, I)": r.prior, "biased latents G⁻¹(real)": r.biased_latents},
        r.lfr_field,
        "LFR's field in latent space: where it pushes prior draws",
    )
    dfr_field = lab_figures.field_panel(
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
    yield data, lat, fixed, bars, md, lfr_field, dfr_field, lab_figures.training_curves(r.curves or {}, e)


def stale():
    """Every panel emptied, and the lab's text asking for a run of the new setting."""
    empty = [None] * (LAB_PANELS + 1 + len(LAB_SCENES) + 1)
    empty[LAB_PANELS - 3] = "The setting changed: press **Train live** to train and show this lab."
    return empty


def build(page: Page) -> Built:
    gr.Markdown(TEXT)
    with gr.Row():
        toy = gr.Dropdown([*TOY_SETS, MY_POINTS], value=DEFAULT_LAB[0], label="toy set (or your own points)")
        b_steps = gr.Slider(
            50, 1500, value=DEFAULT_LAB[1], step=10, label="base training steps (short = biased)"
        )
        r_steps = gr.Slider(50, 1500, value=DEFAULT_LAB[2], step=50, label="refiner training steps")
        lab_btn = gr.Button("Train live", variant="primary")
    points = gr.Textbox(
        value="",  # never null: the request guard refuses a null text, and every page load sends this one
        label=f"your own points, used when the toy set is '{MY_POINTS}': one 'x, y' per "
        f"line, {USER_POINTS[0]}–{USER_POINTS[1]} points (rescaled to the prior's spread; "
        "20% held out)",
        lines=4,
        max_lines=8,
        max_length=USER_POINTS_CHARS,
        placeholder="0.1, 2.3\n-1.0, 0.5\n…",
    )
    lab_md = gr.Markdown()
    with gr.Row():
        lab_data, lab_lat, lab_fixed = gr.Plot(), gr.Plot(), gr.Plot()
    lab_bars = gr.Plot()
    with gr.Row():
        lab_lfr_field, lab_dfr_field = gr.Plot(), gr.Plot()
    lab_curves = gr.Plot(label="training curves")
    lab_outputs = [lab_data, lab_lat, lab_fixed, lab_bars, lab_md, lab_lfr_field, lab_dfr_field]
    lab_outputs.append(lab_curves)
    lab_inputs = [toy, b_steps, r_steps, points]
    gr.Markdown(SCRUB_TEXT)
    with gr.Row():
        lab_t = gr.Slider(0, 1, value=1.0, step=TIME_STEP, label="t")
        play_button = gr.Button("▶ play the paths")
    with gr.Row():
        lab_scenes = [gr.Plot(label=f"{stage} at t") for stage in ("base", "LFR", "DFR")]
    lab_t_md = gr.Markdown(elem_id="lab-time")
    scrubbed = [*lab_scenes, lab_t_md]
    on([lab_btn.click], bias_lab, lab_inputs, lab_outputs, "bias_lab").success(
        lab_scrub, [*lab_inputs, lab_t], scrubbed, api_name=False, **COMPUTE
    )
    on([lab_t.release], lab_scrub, [*lab_inputs, lab_t], scrubbed, "lab_scrub")
    on([play_button.click], lab_play, lab_inputs, [lab_t, *scrubbed], "lab_play")
    # a changed setting empties the panels of the last run (they showed another lab), and says what to press
    on([c.input for c in (toy, b_steps, r_steps)], stale, None, [*lab_outputs, *scrubbed])
    opened = [  # a link naming its lab (toy=…) trains it; the scrubber then draws its paths, if still asked
        (bias_lab, lab_inputs, lab_outputs, ("toy",)),
        (scrub_if_trained, [*lab_inputs, lab_t], scrubbed, ("toy",)),
    ]
    return Built({"toy": toy, "b_steps": b_steps, "r_steps": r_steps, "lab_t": lab_t}, on_open=opened)


def warm(bundle: str) -> None:
    """The lab at its default setting (it needs no bundle); a shutdown stops its training."""
    cached_bias_lab(*DEFAULT_LAB, progress=lambda *_: background.check())
