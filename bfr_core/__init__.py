"""BFR Explorer's library, in the order of the method's stages; each imports only from those before it
and from ``infra/``:

- ``generative/`` — the base: flow matching (``flow``), fixed-NFE ODE solving (``ode``), the networks
  (``nets``), training (``train``) and ``inversion`` (real data run back to the biased latents z_b = G⁻¹(x));
- ``refiners/`` — one file per refiner (LFR, its reflow, DFR, the noise refiner) and their registry; each
  file also defines its training command, with the helpers of ``cli/commands``;
- ``bundle.py`` — one directory of trained models, loaded and cross-checked;
- ``pipeline.py`` — z → LFR → G → DFR with every stage returned, at explicit solvers and NFE;
- ``eval/`` — metrics (classifier FID/KID, Inception FID, energy distance), references, scoring rows;
- ``views/`` — the analyses a bundle stores for the app (NFE sweep, α × NFE map, equal-NFE budget,
  latent map, round trips, trajectories, the 2-D bias lab);
- ``infra/`` — datasets, safetensors checkpoints and model cards, devices, torchrun, pictures;
- ``cli/`` — ``python -m bfr_core <command>``: every stage from the command line.
"""

__version__ = "0.1.0"
