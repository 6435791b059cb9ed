"""Launch the app in-process on a free port for tests (shared by the client and browser tests)."""

from __future__ import annotations

import socket

from app import service
from app.ui import build_demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch():
    """Returns (demo, url); the caller closes it with ``demo.close()``."""
    demo = build_demo()
    port = free_port()
    service.launch(
        demo, "127.0.0.1", port, block=False
    )  # the same queue, limits and guard as `python app.py`
    return demo, f"http://127.0.0.1:{port}/"
