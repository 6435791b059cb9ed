"""The Refine tab: samples of the base beside their refinement on the same noise, with a share link."""

from __future__ import annotations

import dataclasses

import gradio as gr

from bfr_core.eval.classifier import batch_summary
from bfr_core.generative.ode import FIXED_SOLVERS, solver_for_nfe
from bfr_core.infra.data import class_name
from bfr_core.eval.evaluate import describe
from bfr_core.eval.metrics import within_class_spread
from bfr_core.pipeline import MODES, Settings
from bfr_core.refiners import refiner_for, variants
from bfr_core.views.alpha_suggestion import load_alpha_suggestion
from bfr_core.views.scores import DIVERSITY, QUALITY, base_scores, verdict

from .. import figures, pictures, registry, urlstate
from ..memo import single_flight
from ..policy import MAX_SEED, as_alpha, as_int, as_label, user_errors
from ..widgets import ALPHA_DEFAULT, Built, Page, on

TITLE, ID = "Refine", "refine"
DATA_POINTS = 2000  # real points drawn in grey under a 2-D bundle's samples
SPREAD_DROP = 0.3  # a batch whose diversity falls by more than this share is flagged as a collapse
RANGES = {"n": (1, 64), "base_nfe": (4, 40), "refiner_nfe": (1, 10)}  # the sliders and the validators
TEXT = (
    "Draw samples from the base generator and refine them. Compare the left and right panels on the "
    "**same noise**: with LFR the sample's shape changes (a new latent: another stroke, pose or layout), "
    "with DFR its details are cleaned up in place. It opens on the setting the bundle's stored scores rank "
    "best. Try `none`, `LFR`, `LFR → DFR`, and LFR at 1 NFE (one Euler step *collapses*: clean samples, all "
    "alike — watch the "
    "diversity and the stored recall under the pictures) vs 4 (one RK4 step) vs the reflow variant at 1. "
    "The link under the pictures restores these settings."
)


def variant_choices(space: str) -> list[tuple[str, str]]:
    """The refiners of one space that Refine offers, from the registry: [("variant: label", variant)]."""
    return [(f"{r.variant}: {r.label}", r.variant) for r in variants(space).values()]


def distilled(pipe, space: str, variant: str) -> bool:
    """Whether the bundle's refiner runs Euler steps by design (its card's default solver is Euler: the
    reflow LFR, distilled to one step); the others run RK4 at multiples of 4 NFE, else Euler."""
    card = pipe.bundle.cards.get(refiner_for(space, variant).name)
    return card is not None and card.sampling is not None and card.sampling.solver == "euler"


def request(bundle: str, **controls):
    """Validate one Refine request, given by control name (REFINE_FIELDS; a control not given takes its
    REFINE_DEFAULTS value); returns (pipeline, n, seed, label, Settings)."""
    unknown = sorted(set(controls) - set(REFINE_FIELDS))
    if unknown:
        raise TypeError(f"unknown Refine controls: {', '.join(unknown)}")
    c = {**REFINE_DEFAULTS, **controls}
    mode, lfr_variant, dfr_variant = c["mode"], c["lfr_variant"], c["dfr_variant"]
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    pipe = registry.pipeline(bundle)
    settings = Settings(
        mode=mode,
        base_solver=c["base_solver"],
        base_nfe=as_int(c["base_nfe"], "base NFE", *RANGES["base_nfe"]),
        lfr_variant=lfr_variant,
        lfr_nfe=as_int(c["lfr_nfe"], "LFR NFE", *RANGES["refiner_nfe"]),
        alpha=as_alpha(c["alpha"]) if pipe.bundle.alpha_range() else None,
        dfr_variant=dfr_variant,
        dfr_nfe=as_int(c["dfr_nfe"], "DFR NFE", *RANGES["refiner_nfe"]),
    )
    settings.refiners()  # an unknown variant is refused by name here
    if distilled(pipe, "latent", lfr_variant):
        settings.lfr_solver = "euler"
    elif mode in ("lfr", "lfr+dfr"):
        settings.lfr_solver = solver_for_nfe(settings.lfr_nfe)
    settings.dfr_solver = (
        "euler" if distilled(pipe, "data", dfr_variant) else solver_for_nfe(settings.dfr_nfe)
    )
    return (
        pipe,
        as_int(c["n"], "number of samples", *RANGES["n"]),
        as_int(c["seed"], "seed", 0, MAX_SEED),
        as_label(c["label"]) if pipe.bundle.num_classes else None,
        pipe.resolve(settings),
    )


REFINE_FIELDS = (
    "bundle",
    "seed",
    "n",
    "label",
    "base_solver",
    "base_nfe",
    "mode",
    "lfr_variant",
    "lfr_nfe",
    "alpha",
    "dfr_nfe",
    "dfr_variant",
)  # the Refine controls, in the order of their inputs and URL parameters


def share_query(**controls) -> str:
    """The query string that reopens Refine with these settings (``?tab=refine&bundle=mnist&seed=3…``)."""
    return urlstate.share_link("refine", **{k: controls[k] for k in REFINE_FIELDS})


REFINE_DEFAULTS = {
    "seed": 0,
    "n": 16,
    "label": "any",
    "base_solver": "rk4",
    "base_nfe": 20,
    "mode": "dfr",  # the best refined row of mnist's stored scores under both metrics (a test checks)
    "lfr_variant": "ode",
    "lfr_nfe": 4,
    "alpha": ALPHA_DEFAULT,
    "dfr_nfe": 4,
    "dfr_variant": "dfr",
}  # the Refine controls' initial values (the bundle: the menu's first), which the start-up warm-up computes


@user_errors
def refine(
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
    dfr_variant="dfr",
):
    """Base and refined samples side by side, their difference, and quick batch metrics. The answer is
    a pure function of the validated request, so the last ``REFINE_KEPT`` are kept (the default one is
    computed at start-up) and a repeated request is answered without sampling again."""
    controls = dict(locals())  # the Refine controls by name (REFINE_FIELDS), for the share link
    _, n, seed, label, s = request(**controls)
    key = (bundle, n, seed, label, *dataclasses.astuple(s))  # validated scalars: hashable
    return refine_answer(key, share_query(**controls))


REFINE_KEPT = 64


@single_flight(maxsize=REFINE_KEPT)
def refine_answer(key: tuple, link: str):
    bundle, n, seed, label = key[:4]
    pipe = registry.pipeline(bundle)
    s = Settings(*key[4:])
    st = pipe.run(n, seed, s, label=label)
    summary = [
        f"**{describe(st.settings, st.nfe)}** · NFE per sample: "
        + ", ".join(f"{k} {v}" for k, v in st.nfe.items())
        + f" (total {sum(st.nfe.values())}) · [link to these settings]({link})"
    ]
    summary += quality_lines(bundle, pipe, st)
    hist = None
    if pipe.bundle.has("classifier"):
        clf = pipe.bundle.models["classifier"]
        b, r = batch_summary(clf, st.base, st.labels), batch_summary(clf, st.final, st.labels)
        for name, m in (("base", b), ("refined", r)):
            acc = f", accuracy vs requested class {m['accuracy']:.0%}" if "accuracy" in m else ""
            summary.append(f"- {name}: classifier confidence {m['confidence']:.3f}{acc}")
        names = [class_name(pipe.bundle.dataset, k) for k in range(len(b["histogram"]))]
        hist = figures.class_histogram(b["histogram"], r["histogram"], names)
    data = registry.training_images(bundle) if st.base.dim() == 2 else None  # 2-D points: over the data
    data = None if data is None else data[:DATA_POINTS]
    images = (
        pictures.grid(st.base, data),
        pictures.grid(st.final, data),
        pictures.difference_map(st.base, st.final),
    )
    return (*map(pictures.png_file, images), "\n".join(summary), hist)


def quality_lines(bundle: str, pipe, st) -> list[str]:
    """This batch's diversity against the base's, and the stored score of this very setting (both metrics
    and recall, from the bundle's `bfr evaluate` / `bfr sweep` files) with the warnings it earns."""
    lines = []
    base_spread, spread = within_class_spread(st.base, st.labels), within_class_spread(st.final, st.labels)
    if base_spread and spread is not None and st.settings.mode != "none":
        change = spread / base_spread - 1
        lines.append(
            "- diversity of this batch (mean distance between two samples of one class): "
            f"base {base_spread:.2f} → refined **{spread:.2f}** ({change:+.0%})"
        )
        if change < -SPREAD_DROP:
            lines.append(
                f"- ⚠️ the refined samples are {-change:.0%} more alike than the base's: clean but not "
                "diverse, a collapse"
            )
    kept = registry.scores(bundle)
    scores, base = kept.get(describe(st.settings, st.nfe)), base_scores(pipe, kept)
    if scores is None or base is None:
        lines.append("- no stored score for this setting (the bundle's stored rows and NFE sweep lack it)")
        return lines
    shown = [m for m in (*QUALITY, DIVERSITY) if m in scores and m in base]
    lines.append(
        "- stored score of this setting (lower FID is better; recall: the share of real data covered; "
        + (f"{scores['n']:,} samples, " if scores.get("n") else "")
        + f"{scores['source']}): "
        + ", ".join(
            f"{m.upper() if m in QUALITY else m} **{scores[m]:.2f}** (base {base[m]:.2f})" for m in shown
        )
    )
    lines += [f"- ⚠️ {w}" for w in verdict(scores, base)]
    return lines


def histogram_shown(bundle):
    """The class histogram's panel, shown only for a bundle with a classifier (2-D points have none)."""
    if bundle not in registry.available_bundles():
        return gr.update()
    return gr.update(visible=registry.pipeline(bundle).bundle.has("classifier"))


def class_choices(bundle: str | None = None) -> list[tuple[str, str]]:
    """The class dropdown's choices: "any", then each label with its name where the dataset has names
    (CIFAR-10: "3 cat"); the values stay the labels, so links and the API are unchanged."""
    dataset = registry.pipeline(bundle).bundle.dataset if bundle else "mnist"
    return [("any", "any")] + [(class_name(dataset, k), str(k)) for k in range(10)]


def class_hint(bundle):
    """The class dropdown for this bundle: its labels' names."""
    if bundle not in registry.available_bundles():
        return gr.update()
    return gr.update(choices=class_choices(bundle))


def alpha_hint(bundle):
    """The α slider's note for this bundle: the α estimated from its inverted latents (``bfr suggest-alpha``)
    and whether its LFR takes α at all."""
    if bundle not in registry.available_bundles():
        return gr.update()
    b = registry.pipeline(bundle).bundle
    suggestion = load_alpha_suggestion(b)
    rng = b.alpha_range()
    text = f"this LFR takes α in [0, {rng[1]:g}]" if rng else "this bundle's LFR was trained at one α: unused"
    if suggestion is not None:
        text += f" · suggested α from its latents: {suggestion['alpha']:.2f} (bfr suggest-alpha)"
    return gr.update(info=text)


@user_errors
def generate(bundle, seed, n, label, base_solver, base_nfe):
    """Base samples only (no refinement)."""
    controls = dict(seed=seed, n=n, label=label, base_solver=base_solver, base_nfe=base_nfe, mode="none")
    pipe, n, seed, label, s = request(bundle, **controls)
    return pictures.png_file(pictures.grid(pipe.run(n, seed, s, label=label).base))


SAMPLES_PANEL = dict(type="filepath", format="png", elem_classes=["pixelated"])  # sharp when scaled (ui.CSS)


def build(page: Page) -> Built:
    bundles, first, alpha_max = page.bundles, page.first, page.alpha_max
    gr.Markdown(TEXT)
    D = REFINE_DEFAULTS
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            bundle = gr.Dropdown(bundles, value=first, label="bundle (dataset — source of its bias)")
            seed = gr.Number(D["seed"], label="seed (an integer)", minimum=0, maximum=MAX_SEED)
            n = gr.Slider(*RANGES["n"], value=D["n"], step=1, label="samples")
            label = gr.Dropdown(class_choices(), value=D["label"], label="class")  # names: on load
            base_solver = gr.Radio(list(FIXED_SOLVERS), value=D["base_solver"], label="base solver")
            base_nfe = gr.Slider(*RANGES["base_nfe"], value=D["base_nfe"], step=4, label="base NFE")
            mode = gr.Radio(
                [("none", "none"), ("LFR", "lfr"), ("DFR", "dfr"), ("LFR → DFR", "lfr+dfr")],
                value=D["mode"],
                label="refinement",
            )
            lfr_variant = gr.Radio(variant_choices("latent"), value=D["lfr_variant"], label="LFR variant")
            lfr_nfe = gr.Slider(
                *RANGES["refiner_nfe"],
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
                *RANGES["refiner_nfe"],
                value=D["dfr_nfe"],
                step=1,
                label="DFR NFE (multiples of 4 use RK4, else Euler)",
            )
            dfr_variant = gr.Radio(variant_choices("data"), value=D["dfr_variant"], label="DFR variant")
            go = gr.Button("Refine", variant="primary")
            gen = gr.Button("Generate base only")
        with gr.Column(scale=3):
            # before / after side by side, each half the column (32-px colour images need the room); the
            # difference map beside the numbers under them
            with gr.Row():
                base_img = gr.Image(**SAMPLES_PANEL, label="base G(z)")
                refined_img = gr.Image(**SAMPLES_PANEL, label="refined")
            with gr.Row():
                diff_img = gr.Image(**SAMPLES_PANEL, label="|refined − base|")
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
        dfr_variant,
    ]
    outputs = [base_img, refined_img, diff_img, summary, hist]
    changed = [s.release for s in (lfr_nfe, alpha, dfr_nfe, base_nfe, n)]
    changed += [c.input for c in (mode, lfr_variant, dfr_variant, label, bundle, base_solver)]
    on([go.click, *changed], refine, inputs, outputs, "refine")
    on([gen.click], generate, inputs[:6], base_img, "generate")
    on([bundle.change, page.demo.load], histogram_shown, [bundle], [hist])  # only where a classifier is
    on([bundle.change, page.demo.load], alpha_hint, [bundle], [alpha])  # the suggested α, per bundle
    on([bundle.change, page.demo.load], class_hint, [bundle], [label])  # CIFAR-10's class names
    return Built(dict(zip(REFINE_FIELDS, inputs)), on_load=[(refine, inputs, outputs)])


def warm(bundle: str) -> None:
    refine(bundle, **REFINE_DEFAULTS)
