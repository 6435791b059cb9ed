"""Every tab opened by a shared link in a real browser: the links, how to tell each view is computed, and
what its charts' axes span. Shared by tests/test_browser_tabs.py and scripts/screenshots.py."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from bfr_core.views.lab import DEFAULT_LAB

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots of every browser test
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# tab → (the query a teacher shares, a JS condition true once the view is computed without any click)
LINKS = {
    "refine": (
        "?tab=refine&bundle=mnist&mode=lfr&lfr_variant=ode&lfr_nfe=1",
        "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 50).length >= 3"
        " && document.body.innerText.includes('stored score of this setting')",
    ),
    "latents": (
        "?tab=latents&l_bundle=mnist&l_nfe=1",
        "document.body.innerText.includes('Energy distance in all d dimensions')"
        " && document.querySelector('#latent-map .js-plotly-plot')?._fullData?.length >= 3",
    ),
    "trajectories": (
        "?tab=trajectories&t_bundle=mnist&t_time=0.5",
        "document.body.innerText.includes('t = 0.50 · rows')",
    ),
    "inspect": (  # the link's solver and NFE are restored and used: the view says so
        "?tab=inspect&i_bundle=mnist&i_index=3&i_solver=euler&i_nfe=8",
        "document.body.innerText.includes('Bias meter') && document.body.innerText.includes('euler, 8 NFE')",
    ),
    "overrefine": (
        "?tab=overrefine&o_bundle=mnist",
        "document.querySelector('#overrefine-curves .js-plotly-plot')?._fullData?.length > 1",
    ),
    "questions": (
        "?tab=questions&q_bundle=mnist-leak",
        "document.body.innerText.includes('Stop rule')"
        " && document.body.innerText.includes('stores no invertibility curve')",
    ),
    "bundles": ("?tab=bundles&b_bundle=mnist", "document.body.innerText.includes('Stored views')"),
    "lab": (
        # the lab's first setting, which `python app.py` trains at start-up (the warm-up): a link to it is
        # answered from that run
        "?tab=lab&toy={}&b_steps={}&r_steps={}".format(*DEFAULT_LAB),
        "document.body.innerText.includes('Energy distance to held-out points')",
    ),
}

# every visible chart: its y axis (type, range) and the extent of the values its traces draw
CHART_RANGES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(gd => gd.offsetParent !== null && gd._fullLayout && gd._fullData)
  .map(gd => {
    const ys = gd._fullData.filter(t => t.visible !== false && t.type !== 'heatmap' && t.y)
      .flatMap(t => Array.from(t.y).map(Number)).filter(Number.isFinite);
    const axis = gd._fullLayout.yaxis;
    return {type: axis.type, range: axis.range.map(Number), min: Math.min(...ys), max: Math.max(...ys),
            title: (gd._fullLayout.title && gd._fullLayout.title.text) || ''};
  }).filter(c => Number.isFinite(c.min))"""


@contextlib.contextmanager
def tab_page(width: int, height: int = 900):
    """A page of Debian's chromium (driven by Playwright) ``width`` px wide; fails when chromium is missing
    (.ci/run installs it: Playwright's own browser download does not work here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            # a shared CI machine can take over Playwright's default 30 s to bring a tab's first answers in
            page.set_default_navigation_timeout(180_000)
            yield page
        finally:
            browser.close()


def browser_page(height: int):
    """A page 1400 px wide (the app's full layout)."""
    return tab_page(1400, height)


def open_tab(page, server: str, tab: str, timeout_ms: int = 240_000) -> None:
    """Open ``tab``'s shared link and wait until its view is computed (no click)."""
    query, ready = LINKS[tab]
    page.goto(server + query, wait_until="load")
    page.wait_for_function(ready, timeout=timeout_ms)
    page.wait_for_timeout(500)  # the last redraw


def chart_ranges(page) -> list[dict]:
    return page.evaluate(CHART_RANGES)


def axis_fits(chart: dict) -> bool:
    """Whether a chart's y axis spans its values without running decades (log) or spans (linear) past them."""
    lo, hi = chart["range"]
    if chart["type"] == "log":
        import math

        vmin, vmax = math.log10(max(chart["min"], 1e-300)), math.log10(max(chart["max"], 1e-300))
        return lo <= vmin + 1e-6 and hi >= vmax - 1e-6 and (hi - lo) <= (vmax - vmin) + 2
    span = max(chart["max"] - chart["min"], 1e-9)
    return lo <= chart["min"] + 1e-9 * span and hi >= chart["max"] - 1e-9 * span and (hi - lo) <= 4 * span + 2
