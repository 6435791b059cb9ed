"""BFR Explorer's Gradio UI: layout (ui.py), callbacks (callbacks.py), figures (figures.py).

All computation is delegated to :mod:`bfr_core`; this package only shapes inputs and outputs.
"""
