"""The app's tabs, one module each, in the order the page shows them.

A tab module defines ``TITLE`` (its label), ``ID`` (``?tab=ID`` opens it), ``build(page) -> Built`` (its
layout and events, called inside its ``gr.Tab``; returns its URL controls and the views the page computes
on load) and, optionally, ``warm(bundle)`` (its first answer, computed in the background at start-up).
Adding a tab: write the module and add it to ``TABS``.
"""

from . import bundles, inspector, lab, latents, method, overrefine, refine, trajectories

TABS = (refine, latents, trajectories, inspector, overrefine, lab, bundles, method)
