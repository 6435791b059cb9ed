"""Launch BFR Explorer: ``python app.py [--host 127.0.0.1] [--port 7860] [--share]``."""
from __future__ import annotations

import argparse

from app.ui import build_demo

CONCURRENCY = 4  # requests computed at once per event; more only thrash a 2-core CPU
QUEUE_SIZE = 64  # waiting requests beyond this are refused instead of piling up


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="BFR Explorer: interactive bias refinement (Gradio UI).")
    ap.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--share", action="store_true", help="create a public Gradio share link")
    args = ap.parse_args(argv)
    demo = build_demo().queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=True)


if __name__ == "__main__":
    main()
