"""The page: the title, then each tab of ``app.tabs.TABS`` in order; a shared link restores every tab's
controls (``?tab=latents&l_nfe=2…``) and the page computes each tab's load views after it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from . import registry, urlstate
from .service import COMPUTE
from .tabs import TABS
from .widgets import Page

LATENT_CLICK_JS = (Path(__file__).parent / "latent_click.js").read_text(encoding="utf-8")
# The machine's own fonts: no request to a font server (a classroom may be offline, and a visitor's browser
# should not call third parties), and no fallback glyph swapped in mid-word while a web font loads.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)
TITLE = (
    "# BFR Explorer\n"
    "See generative bias in a flow-matching model, and correct it without noise: **LFR** (latent "
    "space) and **DFR** (data space)."
)


# sample pictures are upscaled by pixel repetition (bfr_core.infra.images); the browser scales them to their
# panel without smoothing either, so a 32-px CIFAR-10 image stays sharp at any panel width
CSS = ".pixelated img { image-rendering: pixelated; }"


def build_demo() -> gr.Blocks:
    bundles = registry.bundle_choices()
    if not bundles:
        raise SystemExit("no bundles found under checkpoints/; see README for how to build one")
    controls, on_load = {}, []
    with gr.Blocks(title="BFR Explorer", analytics_enabled=False) as demo:
        gr.Markdown(TITLE)
        page = Page(bundles, demo)
        with gr.Tabs() as tabs:
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab.ID, elem_id=f"tab-{tab.ID}"):
                    built = tab.build(page)
                controls.update(built.controls)
                on_load += built.on_load
                for fn, inputs, outputs, needs in built.on_open:  # a shared link opens its view computed
                    gate = urlstate.when_opened(tab.ID, needs, fn, len(inputs), len(outputs))
                    on_load.append((gate, inputs, outputs))
        demo.url_controls = controls  # for the tests
        demo.launch_options = {"theme": THEME, "css": CSS}  # Gradio 6 takes them at launch (service.launch)
        restore = urlstate.restorer(controls, [tab.ID for tab in TABS])
        # in the page: a click on a ring of the latent map inspects that biased latent
        demo.load(None, None, None, js=LATENT_CLICK_JS, api_name=False, **COMPUTE)
        loaded = demo.load(restore, None, [*controls.values(), tabs], api_name=False, **COMPUTE)
        for fn, inputs, outputs in on_load:
            loaded = loaded.then(fn, inputs, outputs, api_name=False, **COMPUTE)
    return demo
