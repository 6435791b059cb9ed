"""The Gradio layout. Every event calls a function of app.callbacks (which calls bfr_core)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from bfr_core.data import TOY_SETS
from bfr_core.lab import DEFAULT_LAB, USER_POINTS, USER_POINTS_CHARS
from bfr_core.latent_view import MAP_ALPHA_STEP, MAP_NFES
from bfr_core.ode import FIXED_SOLVERS

from . import callbacks, registry, urlstate
from .callbacks import MY_POINTS
from .service import COMPUTE

LATENT_CLICK_JS = (Path(__file__).parent / "latent_click.js").read_text(encoding="utf-8")

METHOD_TEXT = """
### Generative bias
A flow-matching generator is trained on exact intermediate states but sampled from its own
predictions, so errors accumulate and generated samples drift from the data. Run real images
*backwards* through the generator's ODE (inversion): if the generator were perfect, those
latents would look like the N(0, I) prior. They do not — these are the **biased latents**.

### LFR — latent-space flow refinement
Train a small flow from the prior N(0, I) to the biased latents (mixed with a little noise:
z₁ = √(1−a)·z_b + √a·ε, a ~ U(0, α)), with minibatch optimal-transport pairing. To sample:
draw z, move it with a few refiner steps to z′, then generate G(z′). The paper's setting is
one RK4 step (4 network evaluations). One *Euler* step collapses (it lands on a conditional
mean); the **reflow** variant distils the LFR flow so that one Euler step (1 NFE) works.

### DFR — data-space flow refinement
Train a flow from generated samples to real ones (same class, OT pairing, light augmentation
of the source). It works with any generator, also a non-invertible one. More steps help.

### The sliders
- **NFE** counts network evaluations, not steps: RK4 spends 4 per step, Euler 1.
- **α** is the mixing coefficient. An *α-conditioned* LFR (the toy and digits bundles) takes it as
  an input, trained for α ∈ [0, α_max], so moving the slider really changes the refiner: α = 0
  corrects fully towards the biased latents, larger α pulls the target back towards the prior
  (weaker correction, more robust to inversion error). The MNIST bundles' LFRs are trained at a
  fixed α = 0.2, which held-out images preferred; for them the slider is not used.
- **Over-refinement**: the paper reports LFR getting worse with more steps; the Over-refinement
  tab measures it on each bundle instead of assuming it.
"""


def bundle_and_alpha(bundles: list[tuple[str, str]], alpha_max: float) -> tuple[gr.Dropdown, gr.Slider]:
    """The bundle picker and α slider that the Latents and Over-refinement tabs both start with."""
    return (
        gr.Dropdown(bundles, value=bundles[0][1], label="bundle"),
        gr.Slider(0, alpha_max, value=callbacks.ALPHA_DEFAULT, step=MAP_ALPHA_STEP, label="α"),
    )


def stored_view(text: str, button: str, plot_label: str, fn, bundle) -> None:
    """A view of something the bundle stores: its explanation, a button, then a chart beside a verdict
    (``fn(bundle) -> (figure, markdown)``), served at the route named after ``fn``. Returns the button."""
    gr.Markdown(text)
    with gr.Row():
        btn = gr.Button(button, variant="secondary")
    with gr.Row():
        plot, md = gr.Plot(label=plot_label), gr.Markdown()
    on([btn.click], fn, [bundle], [plot, md], fn.__name__)
    return btn


def on(triggers: list, fn, inputs, outputs, api_name: str | bool = False):
    """One event for several triggers (``gr.on``), under the service's compute limits; ``api_name``
    names its HTTP endpoint (False: none)."""
    return gr.on(triggers, fn, inputs, outputs, api_name=api_name, **COMPUTE)


TEXT = {  # what each view shows and what to look for
    "title": (
        "# BFR Explorer\n"
        "See generative bias in a flow-matching model, and correct it without noise: **LFR** (latent "
        "space) and **DFR** (data space)."
    ),
    "refine": (
        "Draw samples from the base generator and refine them. Compare the left and right panels on the "
        "**same noise**: with LFR the digit's shape changes (a new latent), with DFR its strokes are "
        "cleaned up. Try `none` vs `LFR → DFR`, and LFR at 1 NFE (one Euler step collapses) vs 4 (one RK4"
        " step) vs the reflow variant at 1. The link under the pictures restores these settings."
    ),
    "latents": (
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
    ),
    "trajectories": (
        "**Scrub the solve.** The same 8 samples at time t of three paths: the base ODE from noise (t = "
        "0) to its samples (t = 1), the LFR's path in latent space (each latent decoded by the base), and"
        " the DFR's path from the base's samples to the refined ones. Bias is drift along the solve: with"
        " few base steps, watch where the images depart (drag t, step it, or ▶ play it from 0 to 1). Each "
        "path changes only at its solver's grid times."
    ),
    "inspect": (
        "**One real image through the whole BFR idea.** A held-out test image is inverted through the "
        "base ODE (its *biased latent*), decoded back (how faithful is the round trip at this solver and "
        "NFE?), and decoded after the LFR moves its latent. Below, the **bias meter**: 64 real images "
        "inverted the same way, their ‖z‖/√d against the shell where N(0, I) draws live. Change the "
        "solver and NFE and watch the bias move: a histogram cannot invent structure."
    ),
    "overrefine": (
        "Quality (FID on the bundle's classifier features vs the held-out test split) as the refiners "
        "take more Euler steps; the stored curves were measured on more samples when the bundle was built"
        " (their command is in the title), and 8 samples as LFR steps grow (top row: base; each next row "
        "one more NFE, as listed: 1, 2, 3, 4, 6, 8, 10)."
    ),
    "worth": (
        "**Is refinement worth its NFE?** Spend the same extra network evaluations either on more base "
        "solver steps or on a refiner after the base, on the same noise (stored when the bundle was "
        "built). If more steps do not help, the bias is not discretisation: it is in the model, and only a "
        "refiner removes it. Below the chart, pick two of its rows and see them side by side on the same "
        "16 noise draws (e.g. 4 more base steps against the LFR's 4 evaluations)."
    ),
    "alpha_map": (
        "**Over-refinement map.** The LFR's quality over its mixing coefficient α and its number of Euler "
        "steps, on the same noise (stored when the bundle was built; bundles whose LFR takes α as an input)."
        " The outlined cell is the best; the paper's claim is that it sits at few steps."
    ),
    "overshoot": (
        "**Provoke it.** Integrate the LFR *past* t = 1, where it was never trained: an overshoot factor "
        "of 1.5 runs its flow to t = 1.5. This is extrapolation, labelled as such; watch the samples "
        "drift and the metric move, beside the trained setting on the same noise."
    ),
    "lab_scrub": (
        "**Scrub the lab's solves.** After *Train live*, move t or press play: the base ODE carries the "
        "same noise draws to its samples, the LFR carries them through latent space towards the biased "
        "latents, and the DFR carries the base's samples back onto the data. Watch where the short-trained "
        "base's points leave the data and where each refiner puts them back. (Paths drawn with 10 steps: "
        "RK4 for the base, Euler for the refiners.)"
    ),
    "lab": (
        "Train a deliberately short base on a 2-D toy set **live**, expose its bias by inversion, then "
        "train LFR and DFR and watch them correct it (a few seconds on a laptop CPU). Look for: the "
        "base's points off the moons, the inverted latents that are *not* a round Gaussian, and the same "
        "points pulled back onto the data by DFR (grey paths)."
    ),
}


TAB_IDS = {
    "Refine": "refine",
    "Latents": "latents",
    "Trajectories": "trajectories",
    "Inspect": "inspect",
    "Over-refinement": "overrefine",
    "Bias lab (2-D)": "lab",
    "Method": "method",
}  # ?tab=ID opens that tab


def build_demo() -> gr.Blocks:
    bundles = registry.bundle_choices()
    if not bundles:
        raise SystemExit("no bundles found under checkpoints/; see README for how to build one")
    first = bundles[0][1]
    ranges = [registry.pipeline(b).bundle.alpha_range() for _, b in bundles]
    alpha_max = max((r[1] for r in ranges if r is not None), default=0.5)  # the widest α-conditioned LFR
    cached = [registry.pipeline(b).bundle.latents for _, b in bundles]
    pick_max = max((len(c["z"]) for c in cached if c is not None), default=1) - 1  # a biased latent's #

    with gr.Blocks(title="BFR Explorer", analytics_enabled=False) as demo:
        gr.Markdown(TEXT["title"])
        with gr.Tabs() as tabs:
            with gr.Tab("Refine", id=TAB_IDS["Refine"]):
                gr.Markdown(TEXT["refine"])
                D = callbacks.REFINE_DEFAULTS
                T, I = callbacks.TRAJECTORY_DEFAULTS, callbacks.INSPECT_DEFAULTS  # noqa: E741
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        bundle = gr.Dropdown(
                            bundles, value=first, label="bundle (dataset — source of its bias)"
                        )
                        seed = gr.Number(
                            D["seed"], label="seed (an integer)", minimum=0, maximum=callbacks.MAX_SEED
                        )
                        n = gr.Slider(1, 64, value=D["n"], step=1, label="samples")
                        label = gr.Dropdown(
                            ["any"] + [str(i) for i in range(10)], value=D["label"], label="class"
                        )
                        base_solver = gr.Radio(
                            list(FIXED_SOLVERS), value=D["base_solver"], label="base solver"
                        )
                        base_nfe = gr.Slider(4, 40, value=D["base_nfe"], step=4, label="base NFE")
                        mode = gr.Radio(
                            [("none", "none"), ("LFR", "lfr"), ("DFR", "dfr"), ("LFR → DFR", "lfr+dfr")],
                            value=D["mode"],
                            label="refinement",
                        )
                        lfr_variant = gr.Radio(
                            [("LFR ODE (paper)", "ode"), ("LFR reflow, 1 Euler step", "reflow")],
                            value=D["lfr_variant"],
                            label="LFR variant",
                        )
                        lfr_nfe = gr.Slider(
                            1,
                            10,
                            value=D["lfr_nfe"],
                            step=1,
                            label="LFR NFE (multiples of 4 use RK4, else Euler)",
                        )
                        alpha = gr.Slider(
                            0,
                            alpha_max,
                            value=D["alpha"],
                            step=0.05,
                            label=f"α — LFR mixing (α-conditioned LFRs: [0, {alpha_max:g}]; fixed α: unused)",
                        )
                        dfr_nfe = gr.Slider(
                            1,
                            10,
                            value=D["dfr_nfe"],
                            step=1,
                            label="DFR NFE (multiples of 4 use RK4, else Euler)",
                        )
                        go = gr.Button("Refine", variant="primary")
                        gen = gr.Button("Generate base only")
                    with gr.Column(scale=3):
                        with gr.Row():
                            base_img = gr.Image(label="base G(z)", type="filepath", format="png")
                            refined_img = gr.Image(label="refined", type="filepath", format="png")
                            diff_img = gr.Image(label="|refined − base|", type="filepath", format="png")
                        summary = gr.Markdown()
                        hist = gr.Plot(label="class histogram")
                inputs = [
                    bundle,
                    seed,
                    n,
                    label,
                    base_solver,
                    base_nfe,
                    mode,
                    lfr_variant,
                    lfr_nfe,
                    alpha,
                    dfr_nfe,
                ]
                outputs = [base_img, refined_img, diff_img, summary, hist]
                changed = [s.release for s in (lfr_nfe, alpha, dfr_nfe, base_nfe, n)]
                changed += [c.input for c in (mode, lfr_variant, label, bundle, base_solver)]
                on([go.click, *changed], callbacks.refine, inputs, outputs, "refine")
                on([gen.click], callbacks.generate, inputs[:6], base_img, "generate")

            with gr.Tab("Latents", id=TAB_IDS["Latents"]):
                gr.Markdown(TEXT["latents"])
                with gr.Row():
                    l_bundle, l_alpha = bundle_and_alpha(bundles, alpha_max)
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
                l_inputs, l_outputs = [l_bundle, seed, l_alpha, l_nfe], [l_plot, l_norms, l_md, l_var]
                on(
                    [l_btn.click, l_alpha.release, l_nfe.release],
                    callbacks.latents,
                    l_inputs,
                    l_outputs,
                    "latents",
                )
                on(
                    [l_pick_go.click, l_pick.submit],
                    callbacks.inspect_latent,
                    [l_bundle, l_pick, l_alpha, l_nfe],
                    [l_pick_img, l_pick_md],
                    "inspect_latent",
                )

            with gr.Tab("Trajectories", id=TAB_IDS["Trajectories"]):
                gr.Markdown(TEXT["trajectories"])
                image_only = [c for c in bundles if len(registry.pipeline(c[1]).bundle.shape) == 3]
                with gr.Row():
                    t_bundle = gr.Dropdown(
                        image_only, value=image_only[0][1] if image_only else None, label="bundle"
                    )
                    t_seed = gr.Number(
                        value=callbacks.TRAJECTORY_DEFAULTS["seed"],
                        precision=0,
                        minimum=0,
                        maximum=callbacks.MAX_SEED,
                        label="seed",
                    )
                    t_base = gr.Slider(4, 40, value=T["base_nfe"], step=4, label="base NFE (RK4)")
                    t_nfe = gr.Slider(1, 10, value=T["refiner_nfe"], step=1, label="refiner NFE (Euler)")
                with gr.Row():
                    t_time = gr.Slider(0, 1, value=T["t"], step=callbacks.TIME_STEP, label="t")
                    t_back = gr.Button("◀ step")
                    t_fwd = gr.Button("step ▶")
                    t_play = gr.Button("▶ play")
                    t_go = gr.Button("Solve", variant="primary")
                t_img = gr.Image(label="base / LFR / DFR at time t", type="filepath", format="png")
                t_md = gr.Markdown()
                t_inputs = [t_bundle, t_seed, t_base, t_nfe, t_time]
                t_triggers = [t_go.click, t_time.release, t_base.release, t_nfe.release, t_bundle.change]
                on([*t_triggers, t_seed.submit], callbacks.trajectory, t_inputs, [t_img, t_md], "trajectory")
                on([t_play.click], callbacks.play, t_inputs[:4], [t_time, t_img, t_md], "play")
                for button, step in ((t_back, callbacks.step_back), (t_fwd, callbacks.step_forward)):
                    button.click(step, [t_time], [t_time], api_name=False, **COMPUTE).then(
                        callbacks.trajectory, t_inputs, [t_img, t_md], api_name=False, **COMPUTE
                    )

            with gr.Tab("Inspect", id=TAB_IDS["Inspect"]):
                gr.Markdown(TEXT["inspect"])
                image_bundles = [c for c in bundles if registry.pipeline(c[1]).bundle.file("examples")]
                with gr.Row():
                    i_bundle = gr.Dropdown(
                        image_bundles, value=image_bundles[0][1] if image_bundles else None, label="bundle"
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
                i_triggers = [i_btn.click, i_index.release, i_nfe.release, i_solver.change]
                on(i_triggers, callbacks.inspect_example, i_inputs, i_outputs, "inspect")

            with gr.Tab("Over-refinement", id=TAB_IDS["Over-refinement"]):
                gr.Markdown(TEXT["overrefine"])
                with gr.Row():
                    o_bundle, o_alpha = bundle_and_alpha(bundles, alpha_max)
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
                    callbacks.overrefine,
                    [o_bundle, o_alpha, o_source],
                    [o_plot, o_drift, o_lines],
                    "overrefine",
                )
                o_views_note = gr.Markdown()  # which views below this bundle cannot run, and why
                o_worth = stored_view(
                    TEXT["worth"], "Compare at equal NFE", "equal total NFE", callbacks.worth_nfe, o_bundle
                )
                AB = callbacks.AB_DEFAULTS
                with gr.Row():
                    ab_a = gr.Dropdown(list(callbacks.AB_ROWS), value=AB["a"], label="A (a row of the chart)")
                    ab_b = gr.Dropdown(list(callbacks.AB_ROWS), value=AB["b"], label="B")
                    ab_seed = gr.Number(
                        AB["seed"], precision=0, minimum=0, maximum=callbacks.MAX_SEED, label="noise seed"
                    )
                    ab_btn = gr.Button("A/B on the same noise", variant="secondary")
                with gr.Row():
                    ab_img_a = gr.Image(label="A", type="filepath", format="png")
                    ab_img_b = gr.Image(label="B", type="filepath", format="png")
                ab_md = gr.Markdown()
                on(
                    [ab_btn.click],
                    callbacks.ab_compare,
                    [o_bundle, ab_a, ab_b, ab_seed],
                    [ab_img_a, ab_img_b, ab_md],
                    "ab_compare",
                )
                o_alpha_map = stored_view(
                    TEXT["alpha_map"], "Show the α × NFE map", "α × NFE", callbacks.alpha_map, o_bundle
                )
                gr.Markdown(TEXT["overshoot"])
                with gr.Row():
                    o_factor = gr.Slider(
                        1.0,
                        callbacks.MAX_OVERSHOOT_UI,
                        value=callbacks.OVERSHOOT_DEFAULTS["factor"],
                        step=0.25,
                        label="overshoot: integrate LFR to t =",
                    )
                    o_shoot = gr.Button("Overshoot", variant="secondary")
                with gr.Row():
                    o_shoot_img = gr.Image(
                        label="base / LFR to t = 1 / LFR to t = overshoot", type="filepath"
                    )
                    o_shoot_md = gr.Markdown()
                o_outputs = [o_shoot_img, o_shoot_md]
                on(
                    [o_shoot.click],
                    callbacks.overshoot,
                    [o_bundle, o_alpha, o_factor],
                    o_outputs,
                    "overshoot",
                )
                on(  # buttons a bundle cannot use are disabled, with the reason above them
                    [o_bundle.change, demo.load],
                    callbacks.view_buttons,
                    [o_bundle],
                    [o_worth, ab_btn, o_alpha_map, o_shoot, o_views_note],
                )

            with gr.Tab("Bias lab (2-D)", id=TAB_IDS["Bias lab (2-D)"]):
                gr.Markdown(TEXT["lab"])
                with gr.Row():
                    toy = gr.Dropdown(
                        [*TOY_SETS, MY_POINTS], value=DEFAULT_LAB[0], label="toy set (or your own points)"
                    )
                    b_steps = gr.Slider(
                        50, 1500, value=DEFAULT_LAB[1], step=10, label="base training steps (short = biased)"
                    )
                    r_steps = gr.Slider(
                        50, 1500, value=DEFAULT_LAB[2], step=50, label="refiner training steps"
                    )
                    lab_btn = gr.Button("Train live", variant="primary")
                points = gr.Textbox(
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
                gr.Markdown(TEXT["lab_scrub"])
                with gr.Row():
                    lab_t = gr.Slider(0, 1, value=1.0, step=callbacks.TIME_STEP, label="t")
                    lab_play = gr.Button("▶ play the paths")
                with gr.Row():
                    lab_scenes = [gr.Plot(label=f"{stage} at t") for stage in ("base", "LFR", "DFR")]
                lab_t_md = gr.Markdown(elem_id="lab-time")
                scrubbed = [*lab_scenes, lab_t_md]
                on([lab_btn.click], callbacks.bias_lab, lab_inputs, lab_outputs, "bias_lab").success(
                    callbacks.lab_scrub, [*lab_inputs, lab_t], scrubbed, api_name=False, **COMPUTE
                )
                on([lab_t.release], callbacks.lab_scrub, [*lab_inputs, lab_t], scrubbed, "lab_scrub")
                on([lab_play.click], callbacks.lab_play, lab_inputs, [lab_t, *scrubbed], "lab_play")

            with gr.Tab("Method", id=TAB_IDS["Method"]):
                gr.Markdown(METHOD_TEXT)
        controls = {
            **dict(zip(callbacks.REFINE_FIELDS, inputs)),
            **{"l_bundle": l_bundle, "l_alpha": l_alpha, "l_nfe": l_nfe, "l_pick": l_pick},
            **{"t_bundle": t_bundle, "t_seed": t_seed, "t_base": t_base, "t_nfe": t_nfe, "t_time": t_time},
            **{
                "i_bundle": i_bundle,
                "i_index": i_index,
                "i_solver": i_solver,
                "i_nfe": i_nfe,
                "i_alpha": i_alpha,
            },
            **{"o_bundle": o_bundle, "o_alpha": o_alpha, "o_source": o_source, "o_factor": o_factor},
            **{"ab_a": ab_a, "ab_b": ab_b, "ab_seed": ab_seed},
            **{"toy": toy, "b_steps": b_steps, "r_steps": r_steps, "lab_t": lab_t},
        }
        demo.url_controls = controls  # for the tests
        # a shared link (?tab=latents&l_nfe=2…) restores every control and the tab, then Refine draws
        restore = urlstate.restorer(controls, list(TAB_IDS.values()))
        # in the page: a click on a ring of the latent map inspects that biased latent
        demo.load(None, None, None, js=LATENT_CLICK_JS, api_name=False, **COMPUTE)
        demo.load(restore, None, [*controls.values(), tabs], api_name=False, **COMPUTE).then(
            callbacks.refine, inputs, outputs, api_name=False, **COMPUTE
        )
    return demo
