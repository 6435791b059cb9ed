"""Launch BFR Explorer: ``python app.py [--host 127.0.0.1] [--port 7860] [--auth USER:PASS] [--share]``.

On Hugging Face Spaces (the ``SPACE_ID`` environment variable is set) it serves on 0.0.0.0 as a
public demo: no login, any Host, every other guard on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from app import service  # sets the no-telemetry environment before gradio is imported
from app import background, warmup
from app.tabs import refine
from app.ui import build_demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="BFR Explorer: interactive bias refinement (Gradio UI).")
    hosted = "SPACE_ID" in os.environ  # Hugging Face Spaces
    ap.add_argument(
        "--host",
        default="0.0.0.0" if hosted else "127.0.0.1",
        help="interface to listen on (0.0.0.0 for all: needs --auth or --public-demo)",
    )
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    ap.add_argument(
        "--public-demo",
        action="store_true",
        default=hosted,
        help="serve without a login and accept any Host, for a public demo behind a hosting proxy "
        "(the default on Hugging Face Spaces)",
    )
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
    ap.add_argument(
        "--no-warm-up",
        action="store_true",
        help="do not compute the default Latents and bias-lab views in the background at start-up",
    )
    ap.add_argument(
        "--no-answer-cache",
        action="store_true",
        help="compute every Refine request instead of keeping the last 64 answers (for load tests of the "
        "compute path)",
    )
    args = ap.parse_args(argv)
    # SIGTERM (a service manager's stop) exits like Ctrl-C, so the private folders of served pictures go too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if args.no_answer_cache:
        refine.refine_answer.set_maxsize(0)
    try:
        if not args.no_warm_up:
            warmup.start()
        service.launch(
            build_demo(),
            args.host,
            args.port,
            args.share,
            args.auth,
            args.allowed_host,
            public_demo=args.public_demo,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:  # end the background work before the interpreter does (app.background says why)
        if background.running():
            print(f"stopping: waiting for {', '.join(background.running())}", file=sys.stderr)
        still_running = background.stop(timeout=30.0)
        if still_running:
            print(f"warning: still running at exit: {', '.join(still_running)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
