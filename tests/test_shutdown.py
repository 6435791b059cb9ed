"""Stopping the app never aborts the interpreter: its background work ends before the interpreter does.

The failure this guards against (app.background): a daemon thread inside a PyTorch operation at interpreter
shutdown aborts the process with "terminate called without an active exception" (exit status 134).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from app import background
from app.policy import COMPUTING

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stopping():
    """background.stop() for one test; the flag is cleared after it, so later tests' work still runs."""
    yield background.stop
    background.STOPPING.clear()


def test_stop_ends_background_work_at_its_next_check_and_waits_for_callbacks(stopping):
    steps = []

    def training():
        a = torch.ones(64, 64)
        while True:
            background.check()
            steps.append((a @ a).sum().item())

    def callback():
        with COMPUTING:
            time.sleep(0.3)

    worker = background.start(training, "test-training")
    caller = threading.Thread(target=callback)
    caller.start()
    while not steps:
        time.sleep(0.01)
    assert background.running() == ["test-training"]
    assert stopping(timeout=30) == []
    assert not worker.is_alive() and not caller.is_alive() and COMPUTING.active == 0
    assert steps[0] == 64.0**3


def test_stop_names_what_outlives_its_bound(stopping):
    release = threading.Event()
    background.start(release.wait, "test-deaf", 5.0)  # never calls check()
    try:
        assert stopping(timeout=0.2) == ["test-deaf"]
    finally:
        release.set()


def test_stopping_the_app_during_its_warm_up_exits_cleanly():
    """SIGTERM as soon as the server answers, while the start-up warm-up still computes: exit status 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    app = subprocess.Popen(
        [sys.executable, "app.py", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in app.stdout:
            lines.append(line)
            if "Running on local URL" in line:
                break
        app.send_signal(signal.SIGTERM)
        rest, _ = app.communicate(timeout=60)
    finally:
        app.kill()
    output = "".join(lines) + rest
    assert "stopping: waiting for bfr-warm-up" in output, output[-3000:]
    assert "terminate called" not in output, output[-3000:]
    assert app.returncode == 0, output[-3000:]
