"""Every tab at 1024 px in a real browser, opened by a shared link, on the app as a new user first runs it:
`python app.py` from a copy of the code with nothing beside it (no ../shared/data, no data/, no BFR_DATA_DIR)
and the shipped bundles, so everything a view shows must come from its bundle. Each view is computed without a
click, shows no error, and every chart's y axis spans its values (no decades of empty axis); after a change of
bundle the panels show the new bundle (or are emptied), never the old one. The seconds each tab took to appear
are written to test-artifacts/tab_link_seconds.json beside the screenshots (speed targets are measured by
bench/app_perf.py, not asserted here)."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_server import free_port
from browser_tabs import ARTIFACTS, LINKS, axis_fits, chart_ranges, open_tab, tab_page


ROOT = Path(__file__).resolve().parent.parent
NO_DATA_ENV = {k: v for k, v in os.environ.items() if k != "BFR_DATA_DIR"}


@pytest.fixture(scope="module")
def bare_app(tmp_path_factory):
    """`python app.py` from a copy of the code alone, reading the shipped bundles; yields its URL."""
    home = tmp_path_factory.mktemp("fresh") / "bfr-explorer"
    home.mkdir()
    for part in ("app", "bfr_core"):
        shutil.copytree(ROOT / part, home / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "app.py", home / "app.py")
    from_copy = subprocess.Popen(  # the copy cannot see MNIST: no view may fall back on the dataset
        [sys.executable, "-c", "from bfr_core.infra.data import load_dataset; load_dataset('mnist')"],
        cwd=home,
        env=NO_DATA_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # checked while the app starts
    port = free_port()
    stderr = open(home / "stderr.txt", "w")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=home,
        env={**NO_DATA_ENV, "BFR_CHECKPOINTS": str(ROOT / "checkpoints")},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    _, refused = from_copy.communicate(timeout=120)
    if from_copy.returncode == 0 or "not found" not in refused:
        proc.kill()
        pytest.fail(f"the copy of the code finds MNIST on disk: {refused[-500:]}")
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((home / "stderr.txt").read_text()[-2000:]) from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    stderr.close()


def no_error(page) -> bool:
    toasts = page.locator('[data-testid="toast-body"].error')
    return toasts.count() == 0 and "Error" not in page.locator("body").inner_text()


def test_every_tab_opens_computed_from_its_link_with_readable_charts(bare_app):
    ARTIFACTS.mkdir(exist_ok=True)
    seconds = {}
    with tab_page(1024) as page:
        for tab in LINKS:
            t0 = time.perf_counter()
            open_tab(page, bare_app, tab)
            seconds[tab] = round(time.perf_counter() - t0, 2)
            assert no_error(page), tab
            charts = chart_ranges(page)
            assert all(axis_fits(c) for c in charts), (tab, [c for c in charts if not axis_fits(c)])
            page.screenshot(path=str(ARTIFACTS / f"tab_{tab}.png"))
    (ARTIFACTS / "tab_link_seconds.json").write_text(json.dumps(seconds, indent=1))


def test_a_bundle_change_leaves_no_panel_of_the_old_bundle(bare_app):
    with tab_page(1024) as page:
        open_tab(page, bare_app, "latents")  # mnist at one Euler step: a collapse
        assert "Collapse" in page.locator("body").inner_text()
        page.locator("#latent-map").scroll_into_view_if_needed()
        page.locator("#tab-latents").get_by_label("bundle").click()
        page.get_by_role("option", name="digits", exact=False).first.click()
        page.wait_for_function(  # the map and its numbers are the new bundle's: their link says so
            "[...document.querySelectorAll('#tab-latents a')].some(a => a.href.includes('l_bundle=digits'))",
            timeout=180_000,
        )
        assert no_error(page)
        open_tab(page, bare_app, "overrefine")
        page.locator("#tab-overrefine").get_by_label("bundle").click()
        page.get_by_role("option", name="moons", exact=False).first.click()
        page.wait_for_function(  # moons stores no curves: emptied, and the views it lacks say why
            "document.body.innerText.includes('Not on this bundle')"
            " && !(document.querySelector('#overrefine-curves .js-plotly-plot')?._fullData?.length > 1)",
            timeout=120_000,
        )
        assert no_error(page)
