"""Launch BFR Explorer: ``python app.py [--host 127.0.0.1] [--port 7860] [--auth USER:PASS] [--share]``."""

from __future__ import annotations

import argparse
import sys

from app import service  # sets the no-telemetry environment before gradio is imported
from app.ui import build_demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="BFR Explorer: interactive bias refinement (Gradio UI).")
    ap.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all: needs --auth)"
    )
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASS|FILE",
        help="require a login: USER:PASS, or a file with one USER:PASS per line",
    )
    ap.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name clients may use besides the bind address (repeatable)",
    )
    ap.add_argument("--share", action="store_true", help="create a public Gradio share link (needs --auth)")
    args = ap.parse_args(argv)
    try:
        service.launch(build_demo(), args.host, args.port, args.share, args.auth, args.allowed_host)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
