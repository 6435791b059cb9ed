"""The two views that play a solve in a real browser: the bias lab trained on points a visitor pastes, and the
Trajectories scrubber; each ▶ play streams its frames from an early t to t = 1."""

import pytest

from browser_tabs import ARTIFACTS, browser_page

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
        # a link sets the steps (the sliders' least: the lab computes on opening, then trains on the points)
        page.goto(server + "?tab=lab&b_steps=50&r_steps=50", wait_until="networkidle")
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
