"""The app's one error policy and its validators: what a visitor may read about an error, and how a raw
widget or API value becomes a checked argument (a ValueError naming the field, before any work)."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
import threading

import gradio as gr

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.infra.dataset import DataError
from bfr_core.generative.ode import DivergenceError

MAX_SEED = 2**31 - 1
MAX_NFE = 100


MAX_MESSAGE = 300  # characters of a refusal shown to the client or logged
ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+)+[/\\]?")
log = logging.getLogger("bfr_explorer")


def public_message(e: Exception) -> str:
    """What a client may read about an error: no absolute paths, no environment, bounded length."""
    if isinstance(e, DataError):
        return "this view needs the bundle's dataset, which is not installed on the server"
    text = ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/\\").rsplit("/", 1)[-1] or "…", str(e))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class ComputeGauge:
    """Callbacks running right now, and the most that ever ran at once (for the load benchmark)."""

    def __init__(self):
        self.lock, self.active, self.peak = threading.Condition(), 0, 0

    def __enter__(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def __exit__(self, *exc):
        with self.lock:
            self.active -= 1
            self.lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no callback computes (at most ``timeout`` seconds); True when none does."""
        with self.lock:
            return self.lock.wait_for(lambda: self.active == 0, timeout)


COMPUTING = ComputeGauge()


def refusal(fn_name: str, e: Exception) -> gr.Error:
    """The UI / API message for a validation error: logged as one line, no traceback."""
    message = public_message(e)
    log.info("refused %s: %s", fn_name, message)
    return gr.Error(message, print_exception=False)


REFUSED = (ValueError, CheckpointError, DivergenceError, DataError)


def user_errors(fn):
    """Turn the library's validation errors into messages shown in the UI / returned by the API.

    A refusal is one log line (no traceback); any other exception is a bug and propagates. A generator
    (a view that streams updates) stays a generator, so Gradio still streams it.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                with COMPUTING:
                    yield from fn(*args, **kwargs)
            except REFUSED as e:
                raise refusal(fn.__name__, e) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with COMPUTING:
                return fn(*args, **kwargs)
        except REFUSED as e:
            raise refusal(fn.__name__, e) from None

    return wrapper


def as_int(value, name: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi]; floats are accepted only when whole (sliders send 4.0)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(f)


def as_alpha(value) -> float:
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1], got {value!r}") from None
    if not math.isfinite(a) or not 0 <= a <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {value!r}")
    return a


def as_time(t) -> float:
    """A scrubber time t in 0..1 (a ValueError names a bad one)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
        raise ValueError(f"t must be a number in 0..1, got {t!r}")
    return float(t)


def as_label(value):
    if value in (None, "", "any"):
        return None
    return as_int(value, "class", 0, 9)
