"""mlopen pipelines in a real browser: Playwright driving the system Chromium against the real
``keel server`` of tests/compat/conftest.py (started from a temporary folder with a *relative*
``--store``), used the way a person would: log in, upload a control file and an input file
through the pipelines page's forms, run it with a parameter and read the results page.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.compat.conftest import PASSWORD, STORE, Live
from tests.compat.test_mlopen import KNN, _store_client
from tests.server.conftest import browser  # noqa: F401  (a fixture)
from tests.server.test_browser import _wait_for_job

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: run_pipeline returns a plotly <div> as mlopen's plotter made them, a PIL image and a key
#: of its own; the input is a little CSV of counts
SHOWCASE_PIPELINE = textwrap.dedent(
    """
    import io

    import plotly.graph_objects as go
    import plotly.offline
    from PIL import Image

    def get_params(run=True):
        return {"title": ("string", {"default": "fruit"})} if run else ""

    def train(inpt, params):
        raise Exception("no training phase")

    def run_pipeline(input, model, args, params=None):
        rows = [line.split(",") for line in input.read().decode().split()]
        fig = go.Figure(go.Bar(x=[r[0] for r in rows], y=[int(r[1]) for r in rows]))
        fig.update_layout(title=params["title"])
        png = io.BytesIO()
        Image.new("RGB", (64, 40), (40, 120, 200)).save(png, format="PNG")
        return {
            "text": "counted " + str(len(rows)) + " kinds",
            "graphs": plotly.offline.plot(fig, output_type="div", include_plotlyjs=False),
            "imgs": [png.getvalue()],
            "summary": {"kinds": len(rows), "biggest": max(rows, key=lambda r: int(r[1]))[0]},
        }
    """
)


@pytest.fixture
def page(browser, live: Live) -> Iterator[object]:  # type: ignore[no-untyped-def]  # noqa: F811
    """A fresh browser tab, logged in as the editor through the login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live.url}/pipelines")
    page.wait_for_url(re.compile(r"/login"))  # this tab is not logged in yet
    page.fill("input[name=name]", "eddie")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^" + re.escape(live.url) + r"/(pipelines)?$"))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _upload(page, live: Live, control: Path, data: Path) -> None:  # type: ignore[no-untyped-def]
    """Upload a control file and an input file through the pipelines page's two forms."""
    page.goto(f"{live.url}/pipelines")
    with page.expect_navigation():
        page.set_input_files("#upload-pipeline input[name=control]", control)
        page.check("#upload-pipeline input[name=replace]")
        page.click("#upload-pipeline button[type=submit]")
    assert not page.locator("[role=alert]").count(), page.inner_text("main")
    with page.expect_navigation():
        page.set_input_files("#upload-input input[name=file]", data)
        page.check("#upload-input input[name=replace]")
        page.click("#upload-input button[type=submit]")
    assert not page.locator("[role=alert]").count(), page.inner_text("main")
    assert data.name in page.inner_text("main")


def _run(page, live: Live, name: str, data: str, **params: str) -> str:  # type: ignore[no-untyped-def]
    """Open the pipeline from the list, run it on ``data`` with ``params``, open its results;
    the run's id."""
    page.click(f"table >> text={name}")
    page.wait_for_url(f"{live.url}/pipelines/{name}")
    page.select_option("#run-form select[name=input]", data)
    for key, value in params.items():
        page.fill(f'#run-form [name="param:{key}"]', value)
    page.click("#run-form button[type=submit]")
    _wait_for_job(page)
    page.click("#results-link")
    page.wait_for_url(re.compile(r"/pipelines/runs/\w+$"))
    return str(page.url.rsplit("/", 1)[1])


def _in_the_servers_store(live: Live, run_id: str) -> dict[str, object]:
    """The run's params, read from the store the server was started with (relative to its
    working folder), which the server made there."""
    assert (live.folder / STORE).is_dir()
    run = _store_client(live).get_run(run_id)
    assert run.kind == "pipeline-run"
    return dict(run.params)


def test_knn_is_uploaded_and_run_with_k_3_in_the_browser(  # type: ignore[no-untyped-def]
    page, live: Live, tmp_path: Path
) -> None:
    _upload(page, live, KNN / "knn_control.py", KNN / "iris.csv")
    run_id = _run(page, live, "knn_control", "iris.csv", k="3")

    rows = page.locator("#preds-table tbody tr")
    assert rows.count() == 30  # a fifth of the 150 flowers
    assert rows.first.is_visible() and rows.last.is_visible()  # laid out, not hidden
    assert [h.strip() for h in page.locator("#preds-table th").all_inner_texts()][-2:] == [
        "Predicted Class",
        "Actual Class",
    ]
    assert "Iris-" in rows.first.inner_text()
    text = page.locator("div.pipeline-text")
    assert text.is_visible() and "k nearest neighbours" in text.inner_text()
    assert text.locator("b").inner_text() == "k nearest neighbours"  # its HTML, rendered
    assert "k = 3" in page.inner_text("table.facts")
    page.screenshot(path=str(tmp_path / "mlopen-knn-results.png"), full_page=True)

    assert _in_the_servers_store(live, run_id)["params.k"] == 3


def test_graphs_images_and_extra_keys_are_shown_in_the_browser(  # type: ignore[no-untyped-def]
    page, live: Live, tmp_path: Path
) -> None:
    control = tmp_path / "showcase_control.py"
    control.write_text(SHOWCASE_PIPELINE)
    counts = tmp_path / "fruit.csv"
    counts.write_text("apples,3\npears,7\nplums,5\n")
    _upload(page, live, control, counts)
    run_id = _run(page, live, "showcase_control", "fruit.csv", title="fruit counts")

    chart = page.locator("#graph-0")
    # keel.js hands the figure to plotly, which marks the div and draws into it (its
    # .plot-container takes no height of its own in a min-height box: the SVG is what shows)
    page.wait_for_selector("#graph-0.js-plotly-plot > .plot-container", state="attached")
    drawing = chart.locator("svg.main-svg").first
    assert drawing.is_visible()
    box = drawing.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200, box
    assert chart.locator(".bars path").count() == 3  # apples, pears, plums
    assert "fruit counts" in chart.inner_text()  # the figure's own title, drawn by plotly

    image = page.locator("img.pipeline-img")
    assert image.count() == 1 and image.is_visible()
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]") == [
        True,
        64,
        40,
    ]

    extra = page.locator("section.pipeline-extra")
    assert extra.locator("h2").inner_text() == "summary"
    shown = extra.locator("pre")
    assert shown.is_visible()
    assert '"biggest": "pears"' in shown.inner_text() and '"kinds": 3' in shown.inner_text()
    assert page.locator("pre.pipeline-text, div.pipeline-text").first.inner_text() == (
        "counted 3 kinds"
    )
    page.screenshot(path=str(tmp_path / "mlopen-showcase-results.png"), full_page=True)

    assert _in_the_servers_store(live, run_id)["params.title"] == "fruit counts"
