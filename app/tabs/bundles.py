"""The Bundles tab: what a shipped bundle holds — where its bias comes from, each model and how it was
trained, the files it shares with a sibling, the views it stores and the scores it ships — read from its
files' own metadata; nothing is computed."""

from __future__ import annotations

import gradio as gr

from bfr_core.bundle import MODEL_FILES
from bfr_core.views.invertibility import INVERTIBILITY_FILE
from bfr_core.views.scores import DIVERSITY, QUALITY
from bfr_core.views.stop_rule import STOP_RULE_FILE

from .. import registry, urlstate
from ..policy import user_errors
from ..widgets import Built, Page, on

TITLE, ID = "Bundles", "bundles"
TEXT = (
    "**What each bundle is made of.** A bundle is a folder of model files, each recording the command that "
    "trained it, its steps and its wall time; the app's views read what the bundle stores. Pick a bundle to "
    "see its models, the files it takes from a sibling bundle, and the scores it ships."
)
STORED_VIEWS = {  # file → what it gives the app
    "latent_map": "Latents: the UMAP of every slider setting",
    "bias_plane": "Latents: the bias plane at every LFR NFE",
    "examples": "Inspect: real test images to invert",
    "reference": "scoring without the dataset: the test split's features",
    "overshoot": "Over-refinement: the overshoot rows",
}
STORED_ANSWERS = {  # JSON files → what they give the app
    STOP_RULE_FILE: "Over-refinement and Open questions: where to stop the LFR",
    INVERTIBILITY_FILE: "Open questions: the LFR's gain against the inversion's round trip",
}


def model_line(bundle, name: str) -> str:
    """One model's row: its role, training steps and wall time, network width and its command."""
    meta, card = bundle.meta[name], bundle.cards[name]
    net = meta.get("net", {})
    width = f"{net['channels']} channels" if "channels" in net else net.get("kind", "")
    wall = f"{meta['wall_s']:,.0f} s" if isinstance(meta.get("wall_s"), (int, float)) else "—"
    steps = f"{card.steps:,}" if card.steps else "—"
    command = f"`{card.command}`" if card.command else "—"
    return f"| {name} | {steps} | {wall} | {width} | {command} |"


@user_errors
def bundle_card(bundle):
    """A Markdown card of bundle ``bundle``, from its files."""
    b = registry.pipeline(bundle).bundle
    lines = [
        f"### {bundle}",
        f"*Bias:* {registry.bias_description(bundle)}. Dataset `{b.dataset}`, shape "
        f"{list(b.shape)}, {b.num_classes or 'no'} classes.",
        "",
        "| model | steps | wall time | network | command |",
        "|---|---|---|---|---|",
    ]
    lines += [model_line(b, name) for name in MODEL_FILES if b.has(name)]
    shared = b.shared_files()
    if shared:
        lines += [
            "",
            "*Taken from a sibling bundle:* "
            + ", ".join(f"`{name}` ← {path.parent.name}" for name, path in shared.items()),
        ]
    stored = [f"- `{f}`: {what}" for f, what in STORED_VIEWS.items() if b.file(f)]
    stored += [f"- `{f}`: {what}" for f, what in STORED_ANSWERS.items() if (b.path / f).is_file()]
    lines += ["", "**Stored views**", *(stored or ["- none: every view computes live"])]
    scores = registry.scores(bundle)
    if scores:
        shown = [m for m in (*QUALITY, DIVERSITY)]
        lines += [
            "",
            "**Stored scores** (lower FID is better)",
            "",
            "| setting | " + " | ".join(shown) + " | from |",
            "|---|" + "---|" * (len(shown) + 1),
        ]
        lines += [
            f"| {k} | " + " | ".join(f"{v[m]:.2f}" if m in v else "—" for m in shown) + f" | {v['source']} |"
            for k, v in scores.items()
        ]
    link = urlstate.share_link(ID, b_bundle=bundle)
    return "\n".join(lines) + f"\n\n[link to this view]({link})"


def build(page: Page) -> Built:
    gr.Markdown(TEXT)
    b_bundle = gr.Dropdown(page.bundles, value=page.first, label="bundle", min_width=320)
    card = gr.Markdown()
    on([b_bundle.change], bundle_card, [b_bundle], [card], "bundle_card")
    return Built({"b_bundle": b_bundle}, on_load=[(bundle_card, [b_bundle], [card])])  # files only: cheap
