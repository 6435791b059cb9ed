"""A real browser (Debian's chromium, driven by Playwright) loads the app, clicks, and screenshots it."""

from browser_tabs import ARTIFACTS, browser_page


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
