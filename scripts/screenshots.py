"""Screenshots of every tab, opened by a shared link, at the widths a class sees (1024 and 1440 px).

    python scripts/screenshots.py [--out docs/screenshots] [--widths 1024 1440]

Starts the app in this process on a free port (the shipped bundles), opens each link of ``LINKS`` in Debian's
chromium (Playwright), waits until the view is computed and writes ``OUT/<tab>-<width>.png``. The links are the
ones the lesson uses; ``tests/test_browser_tabs.py`` asserts what these pictures show.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_server import launch  # noqa: E402
from browser_tabs import LINKS, open_tab, tab_page  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--widths", type=int, nargs="+", default=[1024, 1440])
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    demo, url = launch()
    try:
        for width in args.widths:
            with tab_page(width) as page:
                for tab in LINKS:
                    open_tab(page, url, tab)
                    path = args.out / f"{tab}-{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(f"wrote {path}")
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
