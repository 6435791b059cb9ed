"""The Method tab: the method in a page of text."""

from __future__ import annotations

import gradio as gr

from ..widgets import Built, Page

TITLE, ID = "Method", "method"

TEXT = """
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


CITATION = """
### Cite the method
Xin Peng and Ang Gao, *Rethinking Refinement: Correcting Generative Bias without Noise Injection*, arXiv
2601.21182 (2026). The authors' research code: `github.com/XinPeng76/Rethinking-Refinement`. BFR Explorer is
an independent implementation; its measured results are in `docs/RESULTS.md`.
"""


def stage_box(x: int, label: str, sub: str, fill: str) -> str:
    """One box of the diagram: a stage's name and what it is, centred at ``x``."""
    return (
        f'<rect x="{x - 62}" y="22" width="124" height="56" rx="8" fill="{fill}" stroke="#333"/>'
        f'<text x="{x}" y="46" text-anchor="middle" font-size="17" font-weight="bold">{label}</text>'
        f'<text x="{x}" y="66" text-anchor="middle" font-size="12">{sub}</text>'
    )


def arrow(x0: int, x1: int, label: str) -> str:
    return (
        f'<line x1="{x0}" y1="50" x2="{x1 - 6}" y2="50" stroke="#333" stroke-width="2" '
        'marker-end="url(#head)"/>'
        f'<text x="{(x0 + x1) // 2}" y="40" text-anchor="middle" font-size="15">{label}</text>'
    )


STAGES = [  # (centre, name, what it is, colour): the pipeline the Refine tab runs, left to right
    (70, "z ~ N(0, I)", "prior draw", "#eeeeee"),
    (260, "LFR", "latent flow, 1 RK4 step", "#cfe2ff"),
    (450, "G", "the base's ODE", "#f8d7da"),
    (640, "DFR", "data flow, few steps", "#d1e7dd"),
    (830, "x′", "refined sample", "#eeeeee"),
]
DIAGRAM = (
    '<svg viewBox="0 0 900 100" width="100%" role="img" aria-label="z, LFR, z prime, G, x, DFR, x prime">'
    '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="6" refY="4" orient="auto">'
    '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>'
    + "".join(stage_box(x, name, sub, fill) for x, name, sub, fill in STAGES)
    + "".join(
        arrow(a[0] + 62, b[0] - 62, label)
        for a, b, label in zip(STAGES, STAGES[1:], ("z", "z′", "x = G(z′)", "x′"))
    )
    + "</svg>"
)


def build(page: Page) -> Built:
    gr.HTML(DIAGRAM)
    gr.Markdown(TEXT + CITATION)
    return Built({})
