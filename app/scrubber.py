"""The time scrubber that Trajectories and the bias lab share: its step, ▶ play and the step buttons."""

from __future__ import annotations

import time

TIME_STEP = 0.05  # the scrubber's step; frames change at each stage's grid times


PLAY_FRAME_S = 0.2  # pause between the play button's frames (each frame is a picture, not a solve)


def played(frame):
    """(t, *frame(t)) for t from 0 to 1 in scrubber steps, PLAY_FRAME_S apart: what a ▶ play streams."""
    for k in range(round(1 / TIME_STEP) + 1):
        t = round(k * TIME_STEP, 4)
        yield (t, *frame(t))
        time.sleep(PLAY_FRAME_S)


def step_time(t, direction: int) -> float:
    """t moved by one scrubber step, wrapping around 0..1 (the play button's next frame)."""
    t = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0
    nxt = round(t + direction * TIME_STEP, 4)
    return 0.0 if nxt > 1 + 1e-9 else 1.0 if nxt < -1e-9 else nxt


def step_forward(t) -> float:
    return step_time(t, 1)


def step_back(t) -> float:
    return step_time(t, -1)
