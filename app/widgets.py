"""What every tab is built with: the page it is built on, what it hands back, the event helper and the
controls several tabs share."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from bfr_core.views.latent_view import MAP_ALPHA_STEP

from . import registry
from .service import COMPUTE

ALPHA_DEFAULT = 0.2  # every α slider's initial value (the α the shipped fixed-α LFRs were trained at)


@dataclass
class Page:
    """What a tab's ``build`` reads: the bundle menu, the widest α range, the page (for its load event)."""

    bundles: list[tuple[str, str]]  # (menu label, bundle name), the default first
    demo: gr.Blocks

    @property
    def first(self) -> str:
        return self.bundles[0][1]

    @property
    def alpha_max(self) -> float:
        """The top of every α slider: the widest α-conditioned LFR's range (0.5 when none is)."""
        ranges = [registry.pipeline(b).bundle.alpha_range() for _, b in self.bundles]
        return max((r[1] for r in ranges if r is not None), default=0.5)

    def bundles_where(self, keep) -> list[tuple[str, str]]:
        """The menu's bundles whose ``Bundle`` satisfies ``keep``."""
        return [c for c in self.bundles if keep(registry.pipeline(c[1]).bundle)]


@dataclass
class Built:
    """What a tab's ``build`` hands the page: its controls by URL parameter name; the views the page computes
    on every load once those controls are restored from the URL — ``(fn, inputs, outputs)``; and the views
    a shared link opening this tab computes — ``(fn, inputs, outputs, needs)``, run when the URL names this
    tab and every parameter of ``needs``."""

    controls: dict
    on_load: list = field(default_factory=list)
    on_open: list = field(default_factory=list)


def on(triggers: list, fn, inputs, outputs, api_name: str | bool = False):
    """One event for several triggers (``gr.on``), under the service's compute limits; ``api_name``
    names its HTTP endpoint (False: none)."""
    return gr.on(triggers, fn, inputs, outputs, api_name=api_name, **COMPUTE)


def bundle_and_alpha(page: Page) -> tuple[gr.Dropdown, gr.Slider]:
    """The bundle picker and α slider that the Latents and Over-refinement tabs both start with."""
    return (
        gr.Dropdown(page.bundles, value=page.first, label="bundle", scale=2, min_width=320),
        gr.Slider(0, page.alpha_max, value=ALPHA_DEFAULT, step=MAP_ALPHA_STEP, label="α"),
    )


def stored_view(text: str, button: str, plot_label: str, fn, bundle) -> tuple:
    """A view of something the bundle stores: its explanation, a button, then a chart beside a verdict
    (``fn(bundle) -> (figure, markdown)``), served at the route named after ``fn``. Returns the button, the
    chart and the verdict."""
    gr.Markdown(text)
    with gr.Row():
        btn = gr.Button(button, variant="secondary")
    with gr.Row():
        plot, md = gr.Plot(label=plot_label), gr.Markdown()
    on([btn.click], fn, [bundle], [plot, md], fn.__name__)
    return btn, plot, md
