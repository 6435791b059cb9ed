"""The app's tabs, one module each, in the order the page shows them.

A tab module defines ``TITLE`` (its label), ``ID`` (``?tab=ID`` opens it), ``build(page) -> Built`` (its
layout and events, called inside its ``gr.Tab``; returns its URL controls and the views the page computes
on load) and, optionally, ``warm(bundle)`` (its first answer, computed in the background at start-up).
Adding a tab: write the module and add its name to ``ORDER``.
"""

from importlib import import_module

ORDER = (  # module names; a new tab is one more line here
    "refine",
    "latents",
    "trajectories",
    "inspector",
    "overrefine",
    "questions",
    "lab",
    "bundles",
    "method",
)
TABS = tuple(import_module(f".{name}", __name__) for name in ORDER)
