"""The drift UI in a real browser (issue 22): Playwright driving the system Chromium against a
real ``keel server`` process on loopback, over a store where the iris example was trained
and fed rows like its training data, then rows with the petals shifted an hour later.

From the models list (its drift badge) to the version page and its drift link: the drift
page's plotly charts are drawn (an svg in each), its table marks the shifted features as
drifted, and nothing is fetched from another site. The server and login come from
:mod:`server.test_browser`. Screenshots go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from monitoring.helpers import HOUR_MS, feed, shifted, trained_iris, training_like
from server.test_browser import LiveServer, _log_in, _serve, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODELS = "/projects/examples/models"
#: the drift page's charts: the timeline, then one per input feature (4) and output (4)
CHARTS = 1 + 4 + 4
SHIFT = {"petal_length": 2.5, "petal_width": 1.0}


@pytest.fixture(scope="module")
def drift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("browser-drift")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse isolation is not on yet
        mp.setenv("KEEL_CACHE_DIR", str(root / "cache"))
        mp.chdir(root)
        project, client, version = trained_iris(root)
        hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
        feed(client, version, training_like(project, 300), hour - 3 * HOUR_MS)
        moved = shifted(
            training_like(project, 300, seed=1), {"petal_length": 2.5, "petal_width": 1.0}
        )
        feed(client, version, moved, hour - HOUR_MS)
        client.close()
    yield from _serve(root, project / ".keel")


def test_from_the_models_badge_to_drawn_drift_charts(
    browser: Any, drift_server: LiveServer
) -> None:
    shots = screenshots()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((drift_server.url, "data:")) else elsewhere.append(r.url)
        ),
    )

    page.goto(f"{drift_server.url}{MODELS}")
    _log_in(page, drift_server)
    page.wait_for_url(f"{drift_server.url}{MODELS}")
    badge = page.locator("table.grid a.badge.drift")
    badge.wait_for()
    assert badge.inner_text() == "drift"
    assert "petal_length, petal_width" in (badge.get_attribute("title") or "")
    page.screenshot(path=str(shots / "models-drift-badge.png"), full_page=True)

    page.click("table.grid >> text=v1")
    page.wait_for_url(re.compile(r"/models/iris/v/1$"))
    page.click("#drift >> text=Live data against the training data")
    page.wait_for_url(re.compile(r"/models/iris/v/1/drift$"))

    # plotly drew every chart: each [data-chart] became a plot with its svg
    page.wait_for_function(
        "n => document.querySelectorAll('[data-chart].js-plotly-plot svg.main-svg').length >= n",
        arg=CHARTS,
    )
    drawn = page.locator("[data-chart].js-plotly-plot").count()
    assert drawn == CHARTS, drawn
    with_svg = page.evaluate(
        "Array.from(document.querySelectorAll('[data-chart]'))"
        ".filter(el => el.querySelector('svg.main-svg')).length"
    )
    assert with_svg == CHARTS
    # bars were drawn: the reference and live shares of each column, the timeline's windows
    assert page.locator("#drift-charts .barlayer .point").count() > 8 * 3
    assert page.locator("#drift-timeline .barlayer .point").count() >= 2

    verdict = page.inner_text("#verdict")
    assert "The live data drifted: 2 of 4 features drifted" in verdict, verdict
    rows = [r.split("\t") for r in page.locator("#drift-columns tr.drifted").all_inner_texts()]
    assert sorted(r[0] for r in rows if r[1] == "input") == ["petal_length", "petal_width"]
    table = page.inner_text("#drift-columns")
    assert "sepal_length" in table and "species" in table
    titles = page.locator("#drift-charts .gtitle").all_text_contents()
    assert titles[:2] == ["petal_length · drifted", "petal_width · drifted"], titles
    page.screenshot(path=str(shots / "drift.png"), full_page=True)

    # the period form: a window of an hour shows the clean hour and the drifted one
    page.fill("#drift-period input[name=window]", "1h")
    with page.expect_navigation():
        page.click("#drift-period button[type=submit]")
    assert "window=1h" in page.url
    page.wait_for_selector("#drift-timeline.js-plotly-plot svg.main-svg")
    assert page.locator("#drift-timeline .barlayer .point").count() >= 4  # 2 windows x 2 bars
    page.screenshot(path=str(shots / "drift-hourly.png"), full_page=True)

    context.close()
    assert not errors, f"errors on the page: {errors}"
    assert not elsewhere, f"fetched from another site: {elsewhere}"


def test_a_served_model_shows_no_drift_then_drift_in_the_browser(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 22's "done when": a real ``keel serve`` of the iris example with recording on,
    fed over HTTP with training-like calls, then shifted ones; the drift page of a real
    ``keel server`` over the same store shows no drift, then drift on the shifted features."""
    from monitoring.helpers import (
        free_port,
        recording_quickly,
        send,
        serve_model,
        stop_model,
        wait_for_live_records,
    )

    root = tmp_path_factory.mktemp("served-drift")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_CACHE_DIR", str(root / "cache"))
        mp.chdir(root)
        project, client, version = trained_iris(root)
        recording_quickly(project)
        port = free_port()
        model = serve_model(project, port)
        try:
            send(port, training_like(project, 150))
            wait_for_live_records(client, version, 150)
            with contextlib.contextmanager(_serve)(root, project / ".keel") as live:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(20_000)
                drift_page = f"{live.url}{MODELS}/iris/v/1/drift?since=1h&window=1h"
                page.goto(drift_page)
                _log_in(page, live)
                page.wait_for_url(re.compile(r"/drift"))
                verdict = page.inner_text("#verdict")
                assert "drifted" not in verdict.split(":")[0], verdict
                assert "0 of 4 features drifted" in verdict, verdict
                assert page.locator("#drift-columns tr.drifted").count() == 0

                send(port, shifted(training_like(project, 450, seed=3), SHIFT))
                wait_for_live_records(client, version, 600)
                page.goto(drift_page)
                verdict = page.inner_text("#verdict")
                assert "The live data drifted: 2 of 4 features drifted" in verdict, verdict
                rows = page.locator("#drift-columns tr.drifted").all_inner_texts()
                drifted = sorted(r.split("\t")[0] for r in rows if r.split("\t")[1] == "input")
                assert drifted == ["petal_length", "petal_width"]
                page.wait_for_selector("#drift-timeline.js-plotly-plot svg.main-svg")
                page.screenshot(path=str(screenshots() / "served-drift.png"), full_page=True)
                context.close()
        finally:
            stop_model(model)
            client.close()
