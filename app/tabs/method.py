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


def build(page: Page) -> Built:
    gr.Markdown(TEXT)
    return Built({})
