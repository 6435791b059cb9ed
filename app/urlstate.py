"""Every control restored from the page's URL, e.g. ``?tab=latents&l_bundle=mnist&l_nfe=2``.

A URL parameter names a control; its value is checked against that control's own declared range or
choices (a slider's minimum, maximum and step, a number's bounds and step, a dropdown's or radio's
choices), so a link can set nothing the control itself would refuse, and no range is written twice. A
parameter that is absent or refused leaves its control as it is. Read once per page load
(``demo.load``), never through ``gr.DeepLinkButton`` (gradio-app/gradio#11201 can return another
user's result).
"""

from __future__ import annotations

import inspect
import math
from urllib.parse import urlencode

import gradio as gr

TAB_PARAM = "tab"
MAX_PARAM_CHARS = 100  # a longer value is refused unread


def parse_value(control, raw: str):
    """The value ``raw`` sets on ``control``, or None when the control would refuse it."""
    if not isinstance(raw, str) or len(raw) > MAX_PARAM_CHARS:
        return None
    if isinstance(control, (gr.Dropdown, gr.Radio)):
        return next((v for _, v in control.choices if str(v) == raw), None)
    if not isinstance(control, (gr.Slider, gr.Number)):
        return None
    try:
        f = float(raw)
    except ValueError:
        return None
    lo, hi = control.minimum, control.maximum
    if not math.isfinite(f) or (lo is not None and f < lo) or (hi is not None and f > hi):
        return None
    if isinstance(control, gr.Slider):
        step, origin = control.step, lo or 0
    else:  # a number box: its precision, else its step (1 unless set: our number boxes hold seeds)
        step, origin = (1 if control.precision == 0 else control.step), 0
    if step:
        k = (f - origin) / step
        if abs(k - round(k)) > 1e-6:
            return None
        if float(step).is_integer() and float(origin).is_integer():
            return int(round(f))
    return f


def url_updates(query: dict, controls: dict, tab_ids: list[str]) -> list:
    """One update per control (in ``controls`` order), then the tab selection from ``?tab=``."""
    updates = []
    for name, control in controls.items():
        value = parse_value(control, query[name]) if name in query else None
        updates.append(gr.update() if value is None else gr.update(value=value))
    tab = query.get(TAB_PARAM)
    updates.append(gr.Tabs(selected=tab) if tab in tab_ids else gr.update())
    return updates


def restorer(controls: dict, tab_ids: list[str]):
    """The ``demo.load`` callback that restores ``controls`` (name → component) and the tab."""

    def restore(request: gr.Request):
        query = dict(request.query_params) if request is not None else {}
        return url_updates(query, controls, tab_ids)

    return restore


def share_link(tab: str, **values) -> str:
    """The query string that reopens ``tab`` with these control values."""
    return "?" + urlencode({TAB_PARAM: tab, **values})


def when_opened(tab: str, needs: tuple[str, ...], fn, n_inputs: int, n_outputs: int):
    """``fn`` run on page load only when the URL opens ``tab`` (``?tab=TAB``) and names every parameter of
    ``needs`` (e.g. a picked latent's ``l_pick``); otherwise its outputs are left as they are. This is how a
    shared link opens its view computed, while a plain visit computes nothing it did not ask for."""

    def opened(query) -> bool:
        return query.get(TAB_PARAM) == tab and all(name in query for name in needs)

    def skip():
        return gr.update() if n_outputs == 1 else [gr.update()] * n_outputs

    if inspect.isgeneratorfunction(fn):

        def gate(*args):
            *values, request = args
            if opened(dict(request.query_params) if request is not None else {}):
                yield from fn(*values)
            else:
                yield skip()

    else:

        def gate(*args):
            *values, request = args
            if opened(dict(request.query_params) if request is not None else {}):
                return fn(*values)
            return skip()

    params = [inspect.Parameter(f"v{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n_inputs)]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_ONLY, annotation=gr.Request))
    gate.__signature__ = inspect.Signature(params)  # gradio hands the request to the annotated parameter
    gate.__annotations__ = {"request": gr.Request}  # (it reads the type hints, not the signature)
    gate.__name__ = f"open_{fn.__name__}"
    return gate
