"""A real browser (Debian's chromium, driven by Playwright) loads the app, clicks, and screenshots it."""

import contextlib
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
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


@contextlib.contextmanager
def browser_page(height: int):
    """A page of Debian's chromium (driven by Playwright), 1400 px wide; fails when chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            # a shared CI machine can take over Playwright's default 30 s to bring a tab's first answers in
            page.set_default_navigation_timeout(180_000)
            yield page
        finally:
            browser.close()


def test_page_renders_images_and_plot(server):
    with browser_page(1100) as page:
        page.goto(server, wait_until="networkidle")
        page.get_by_role("button", name="Refine").wait_for(timeout=30_000)
        # the load event fills the three image panels; wait until all three <img> have pixels
        page.wait_for_function(
            'document.querySelectorAll(\'img[src*="file="], img[src*="/file"], '
            'img[src^="data:"]\').length >= 3 && '
            "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 50).length >= 3",
            timeout=60_000,
        )
        first = page.locator("img").first.get_attribute("src")
        page.get_by_test_id("DFR-radio-label").click()
        page.wait_for_function(
            "(src) => [...document.querySelectorAll('img')].some(i => i.src !== src && i.naturalWidth > 50)",
            arg=first,
            timeout=30_000,
        )
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() >= 1
        assert "Error" not in page.locator("body").inner_text()[:2000]
        page.screenshot(path=str(ARTIFACTS / "app_refine.png"))
        page.goto(server + "?bundle=digits&seed=7&mode=dfr&n=4", wait_until="networkidle")  # a shared link
        page.wait_for_function(
            "document.body.innerText.includes('link to these settings') && "
            "document.body.innerText.includes('**dfr**'.replaceAll('*', ''))",
            timeout=60_000,
        )
        assert page.get_by_test_id("DFR-radio-label").locator("input").is_checked()
        page.screenshot(path=str(ARTIFACTS / "app_shared_link.png"))
    assert (ARTIFACTS / "app_refine.png").stat().st_size > 10_000


def test_the_over_refinement_tab_draws_the_equal_nfe_chart_and_the_alpha_map_from_a_shared_link(server):
    """A link opens the Over-refinement tab on digits; the two stored views answer their buttons: the
    equal-NFE chart with its verdict, then two of its rows A/B on the same noise (B and the seed from the
    link), and the α × NFE heatmap with its best cell named; Show draws the curves, the drift strip and each
    sample's drift line."""
    with browser_page(1400) as page:
        page.goto(server + "?tab=overrefine&o_bundle=digits&ab_b=dfr&ab_seed=5", wait_until="networkidle")
        page.wait_for_function(
            "[...document.querySelectorAll('[role=tab]')].some("
            "t => t.innerText.trim() === 'Over-refinement' && t.getAttribute('aria-selected') === 'true')",
            timeout=60_000,
        )
        page.get_by_role("button", name="Compare at equal NFE").click()
        page.wait_for_function("document.body.innerText.includes('The best base-only FID')", timeout=60_000)
        page.get_by_role("button", name="A/B on the same noise").click()  # B and the seed came from the link
        page.wait_for_function(
            "document.body.innerText.includes('B: dfr') && "
            "document.body.innerText.includes('The same 16 noise draws (seed 5)')",
            timeout=60_000,
        )
        page.get_by_role("button", name="Show the α × NFE map").click()
        page.wait_for_function(
            "document.body.innerText.includes('Best cell: α =') && "
            "document.querySelectorAll('.js-plotly-plot .heatmaplayer, .js-plotly-plot .hm').length > 0",
            timeout=60_000,
        )
        page.get_by_role("button", name="Show", exact=True).click()  # the curves, the strip, the drift lines
        page.wait_for_function(
            "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some("
            "t => t.textContent.includes('drift from G(z)'))",
            timeout=120_000,
        )
        body = page.locator("body").inner_text()
        assert "Error" not in body
        page.screenshot(path=str(ARTIFACTS / "app_alpha_map.png"))


# record in the page every t the lab's scrubber text shows: a MutationObserver sees each change the page
# makes (polling from Python, or on a timer, misses frames when the machine is busy)
PLAY_RECORDER = """() => {
  window.seenT = [];
  const record = () => {
    const box = document.querySelector('#lab-time');
    const m = box && box.innerText.match(/t = (\\d\\.\\d\\d) · BASE/);
    if (m && m[1] !== window.seenT.at(-1)) window.seenT.push(m[1]);
  };
  record();
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
PLAY_REACHED_THE_END = (  # a frame of the play's first quarter, then t = 1 after it
    "(() => { const s = window.seenT, early = s.findIndex(t => parseFloat(t) <= 0.25);"
    " return early >= 0 && s.lastIndexOf('1.00') > early; })()"
)


def test_the_bias_lab_trains_on_points_a_visitor_pastes(server):
    """The bias lab's own-data path in a real browser: choose 'my points', paste a ring of 200 points,
    train, and get the energy distances, the fields and the training curves; then play its paths."""
    import math

    ring = "\n".join(
        f"{math.cos(k / 200 * 2 * math.pi):.3f}, {math.sin(k / 200 * 2 * math.pi):.3f}" for k in range(200)
    )
    with browser_page(1600) as page:
        page.goto(server + "?tab=lab&r_steps=100", wait_until="networkidle")  # a link sets the steps
        page.get_by_role("button", name="Train live").wait_for(timeout=60_000)
        page.get_by_label("toy set (or your own points)").click()
        page.get_by_role("option", name="my points").click()
        page.get_by_placeholder("0.1, 2.3").fill(ring)
        page.get_by_role("button", name="Train live").click()
        page.wait_for_function(
            "document.body.innerText.includes('Energy distance to held-out points')", timeout=180_000
        )
        # data, latents, before/after, bars, 2 fields, curves: the last answer's plots may draw after its text
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7", timeout=60_000)
        body = page.locator("body").inner_text()
        assert "Error" not in body and "LFR **" not in body  # rendered Markdown, not raw
        page.screenshot(path=str(ARTIFACTS / "app_lab_my_points.png"))
        # then the scrubber: drawn at t = 1 after training; ▶ play moves the points from t = 0 to 1
        page.wait_for_function("document.body.innerText.includes('t = 1.00 · BASE: step 10 of 10')")
        page.evaluate(PLAY_RECORDER)
        page.get_by_role("button", name="▶ play the paths").click()
        try:  # a busy browser may draw two streamed frames as one, so any early frame counts, not just t = 0
            page.wait_for_function(PLAY_REACHED_THE_END, timeout=120_000)
        except Exception as e:  # noqa: BLE001 - say what the page showed instead of a bare timeout
            pytest.fail(
                f"the play did not go from an early t to t = 1: saw {page.evaluate('window.seenT')} ({e})"
            )
        seen = page.evaluate("window.seenT")
        assert len(set(seen)) >= 4, seen  # the play went through frames from early t to 1
        assert (
            page.locator(".js-plotly-plot").count() >= 10 and "Error" not in page.locator("body").inner_text()
        )
        drawn = page.evaluate(  # the panels above still show their points after 21 redrawn frames
            "() => [...document.querySelectorAll('.js-plotly-plot')]"
            ".filter(p => p.textContent.includes('real vs short-trained base'))"
            ".map(p => p.querySelectorAll('.scatterlayer .point').length)"
        )
        assert drawn and drawn[0] >= 100, drawn
        page.screenshot(path=str(ARTIFACTS / "app_lab_scrubber.png"))


def test_the_trajectory_scrubber_steps_and_plays_the_solve(server):
    """A link opens Trajectories; Solve draws t = 1, step ▶ wraps to t = 0, ▶ play streams the frames up to
    t = 1 (several distinct t seen on the way)."""
    import re
    import time

    with browser_page(1100) as page:
        page.goto(server + "?tab=trajectories&t_bundle=digits", wait_until="networkidle")
        page.get_by_role("button", name="Solve").click()
        page.wait_for_function("document.body.innerText.includes('t = 1.00 · rows')", timeout=120_000)
        page.get_by_role("button", name="step ▶").click()
        page.wait_for_function("document.body.innerText.includes('t = 0.00 · rows')", timeout=60_000)
        page.get_by_role("button", name="▶ play").click()
        seen, deadline = set(), time.time() + 120
        while time.time() < deadline:
            seen.update(re.findall(r"t = (\d\.\d\d) · rows", page.locator("body").inner_text()))
            if "1.00" in seen and len(seen) >= 4:
                break
            time.sleep(0.05)
        assert "1.00" in seen and len(seen) >= 4, seen  # the play went through frames to the end
        assert "Error" not in page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "app_trajectory_play.png"))


RING_ON_SCREEN = """() => {
  // the ring (biased latent) farthest, on screen, from every other point of the map: a click there
  // can only hit that ring; returns its number and its position in the page
  const gd = document.querySelector('#latent-map .js-plotly-plot');
  gd.scrollIntoView({block: 'center'});
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const at = (t, i) => [xa._offset + xa.l2p(t.x[i]), ya._offset + ya.l2p(t.y[i])];
  const traces = gd._fullData;  // decoded arrays (the figure ships them base64-encoded)
  const all = traces.flatMap((t, k) => Array.from(t.x, (_, i) => [k, i, ...at(t, i)]));
  const rings = traces.findIndex(t => t.customdata);
  let best = null;
  for (const [k, i, x, y] of all) {
    if (k !== rings || x < xa._offset + 10 || y < ya._offset + 10) continue;
    let near = Infinity;
    for (const [k2, i2, x2, y2] of all) {
      if (k2 !== k || i2 !== i) near = Math.min(near, Math.hypot(x - x2, y - y2));
    }
    if (!best || near > best.near) best = {near, index: traces[rings].customdata[i], x, y};
  }
  const box = gd.getBoundingClientRect();
  return {index: best.index, near: best.near, x: box.left + best.x, y: box.top + best.y};
}"""


def test_clicking_a_ring_on_the_latent_map_inspects_that_biased_latent(server):
    """A link opens Latents; Show latents draws the map; a mouse click on one ring fills the latent box with
    its number and shows its round trip (training image, G(z_b), the LFR's move, nearest images)."""
    with browser_page(1400) as page:
        page.goto(server + "?tab=latents&l_bundle=digits", wait_until="networkidle")
        page.get_by_role("button", name="Show latents").click()
        page.wait_for_function(
            "document.querySelector('#latent-map .js-plotly-plot')?._fullData?.some(t => t.customdata)",
            timeout=180_000,
        )
        page.wait_for_timeout(1000)  # the click hook is attached within half a second of the drawing
        assert "LFR-refined latents" in page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "app_latents.png"))
        ring = page.evaluate(RING_ON_SCREEN)
        assert ring["near"] > 3, ring  # a ring with no other point under the mouse
        page.mouse.move(ring["x"], ring["y"])
        page.mouse.click(ring["x"], ring["y"])
        page.wait_for_function(
            f"document.body.innerText.includes('Biased latent #{ring['index']} ')", timeout=60_000
        )
        assert page.locator("#latent-pick input").input_value() == str(ring["index"])
        text = page.locator("body").inner_text()
        assert f"training image #{ring['index']} · G(z_b) regenerated" in text and "Error" not in text
        page.locator("#latent-pick").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "app_latent_click.png"))
