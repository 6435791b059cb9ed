"""Every tab at 1024 px in a real browser, opened by a shared link: the view is computed without a click,
no error is shown, every chart's y axis spans its values (no decades of empty axis), and after a change of
bundle the panels show the new bundle (or are emptied), never the old one."""

from browser_tabs import LINKS, axis_fits, chart_ranges, open_tab, tab_page


def no_error(page) -> bool:
    return "Error" not in page.locator("body").inner_text()


def test_every_tab_opens_computed_from_its_link_with_readable_charts(server):
    with tab_page(1024) as page:
        for tab in LINKS:
            open_tab(page, server, tab)
            assert no_error(page), tab
            charts = chart_ranges(page)
            assert all(axis_fits(c) for c in charts), (tab, [c for c in charts if not axis_fits(c)])


def test_a_bundle_change_leaves_no_panel_of_the_old_bundle(server):
    with tab_page(1024) as page:
        open_tab(page, server, "latents")  # mnist at one Euler step: a collapse
        assert "Collapse" in page.locator("body").inner_text()
        page.locator("#latent-map").scroll_into_view_if_needed()
        page.locator("#tab-latents").get_by_label("bundle").click()
        page.get_by_role("option", name="digits", exact=False).first.click()
        page.wait_for_function(  # the map and its numbers are the new bundle's: their link says so
            "[...document.querySelectorAll('#tab-latents a')].some(a => a.href.includes('l_bundle=digits'))",
            timeout=180_000,
        )
        assert no_error(page)
        open_tab(page, server, "overrefine")
        page.locator("#tab-overrefine").get_by_label("bundle").click()
        page.get_by_role("option", name="moons", exact=False).first.click()
        page.wait_for_function(  # moons stores no curves: emptied, and the views it lacks say why
            "document.body.innerText.includes('Not on this bundle')"
            " && !(document.querySelector('#overrefine-curves .js-plotly-plot')?._fullData?.length > 1)",
            timeout=120_000,
        )
        assert no_error(page)
