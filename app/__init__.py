"""BFR Explorer's Gradio UI, thin over :mod:`bfr_core`: ``ui`` assembles the page from ``tabs/`` (one module
per tab: its layout, callbacks, defaults, texts, URL controls and warm-up); ``policy`` is the one error
policy and its validators; ``widgets`` what tabs share; ``figures`` draws; ``registry`` loads bundles once.
"""
