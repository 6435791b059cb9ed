"""A new user's first minutes: `python app.py` with no dataset on disk, every tab driven in a real browser.

The app runs as its own process from a copy of the code with nothing beside it (so no `../shared/data`,
no `data/`, no BFR_DATA_DIR) and the shipped bundles: everything a view needs must come from the bundle.
On the default `mnist` bundle each tab's main output must appear with no error toast; the seconds each
took are written to test-artifacts/no_dataset_views.json beside the screenshots (speed targets are
measured by bench/app_perf.py, not asserted here).
"""

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
from test_browser import ARTIFACTS, CHROMIUM, FLAGS

ROOT = Path(__file__).resolve().parent.parent
ACTIVE_PANEL = "[...document.querySelectorAll('[role=tabpanel]')].find(e => e.offsetParent !== null)"
TABS = [  # (tab, primary button, text the view's output shows)
    ("Latents", "Show latents", "LFR-refined latents"),
    ("Trajectories", "Solve", "link to this view"),
    ("Inspect", "Inspect", "link to this view"),
    ("Over-refinement", "Show", "NFE"),
    ("Bias lab (2-D)", "Train live", "Energy distance to held-out points"),
]


@pytest.fixture(scope="module")
def bare_app(tmp_path_factory):
    """`python app.py` from a copy of the code alone; yields its URL."""
    home = tmp_path_factory.mktemp("fresh") / "bfr-explorer"
    home.mkdir()
    for part in ("app", "bfr_core"):
        shutil.copytree(ROOT / part, home / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "app.py", home / "app.py")
    env = {k: v for k, v in os.environ.items() if k != "BFR_DATA_DIR"}
    env["BFR_CHECKPOINTS"] = str(ROOT / "checkpoints")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "stderr.txt", "w"),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((home / "stderr.txt").read_text()[-2000:])
            time.sleep(1)
    yield url, home
    proc.terminate()
    proc.wait(timeout=30)


def test_every_tab_shows_its_output_on_mnist_with_no_dataset_on_disk(bare_app):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "chromium is not installed: .ci/run installs Debian's chromium (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    url, home = bare_app
    from_copy = subprocess.run(
        [sys.executable, "-c", "from bfr_core.infra.data import load_dataset; load_dataset('mnist')"],
        cwd=home,
        env={k: v for k, v in os.environ.items() if k != "BFR_DATA_DIR"},  # as the app was started
        capture_output=True,
        text=True,
    )
    assert from_copy.returncode != 0 and "not found" in from_copy.stderr  # the app cannot see MNIST
    ARTIFACTS.mkdir(exist_ok=True)
    seconds = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_navigation_timeout(180_000)  # a shared CI machine can be slow to settle
        page.goto(url, wait_until="networkidle")
        t0 = time.perf_counter()
        page.wait_for_function(  # the Refine tab fills its three image panels on load
            "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 50).length >= 3",
            timeout=120_000,
        )
        seconds["Refine"] = round(time.perf_counter() - t0, 2)
        page.screenshot(path=str(ARTIFACTS / "no_dataset_refine.png"), full_page=True)
        for tab, button, marker in TABS:
            page.get_by_role("tab", name=tab).click()
            panel = page.locator("[role=tabpanel]:visible")
            t0 = time.perf_counter()
            panel.get_by_role("button", name=button, exact=True).click()
            page.wait_for_function(
                f"(m) => {{ const p = {ACTIVE_PANEL}; return p && p.innerText.includes(m) && "
                "!p.querySelector('.pending, .eta-bar') }",
                arg=marker,
                timeout=180_000,
            )
            seconds[tab] = round(time.perf_counter() - t0, 2)
            name = tab.split()[0].lower().replace("-", "_")
            page.screenshot(path=str(ARTIFACTS / f"no_dataset_{name}.png"), full_page=True)
            errors = page.locator('[data-testid="toast-body"].error')
            assert errors.count() == 0, f"{tab}: {errors.first.inner_text()}"
            assert "Error" not in panel.inner_text(), tab
        browser.close()
    (ARTIFACTS / "no_dataset_views.json").write_text(json.dumps(seconds, indent=1))
    assert set(seconds) == {"Refine", *(t for t, _, _ in TABS)}
