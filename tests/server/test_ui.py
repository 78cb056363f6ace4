"""The web UI through the ASGI app: login, every page with real records, the runs table's
filter/sort/paging, charts downsampled on the server, the alias form's rights, errors as
pages. Also the two helpers the pages lean on: the filter parser and the downsampler."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.entities import InvocationRecord, Metric
from keel.errors import InvalidInput
from keel.server.app import create_app
from keel.server.ui.downsample import MAX_POINTS, downsample, downsample_indices
from keel.server.ui.filters import FilterError, parse_filter

if TYPE_CHECKING:
    from server.conftest import ServerBackend

PASSWORD = "correct-horse"
#: the pages of the server's own project
P = "/projects/default"
LONG_POINTS = 100_000
N_RUNS = 30


@dataclass
class Seeded:
    """The records the pages are tested against."""

    app: FastAPI
    exp_id: str
    trained: Any
    child: Any
    failed: Any
    long: Any
    xss: Any
    plain_runs: list[Any]


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, server_backend: ServerBackend
) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("ui")
    app = create_app(server_backend.settings(store=str(root / "store")))
    for name, role in (("vera", "viewer"), ("eddie", "editor")):
        app.state.accounts.add_user(name, PASSWORD, role)
    client = app.state.client
    exp = client.get_or_create_exp("exp-a")

    plain = []
    for i in range(N_RUNS):
        with exp.start_run(name=f"run-{i:02d}") as run:
            run.log_params({"model": "rf" if i % 2 else "gb", "n": i})
            run.log_metrics({"auc": i / N_RUNS})
            for step in range(3):
                run.log_metrics({"loss": 1.0 / (i + step + 1)}, step=step)
            run.set_tags({"team": "vision"})
        plain.append(run)

    data = root / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    ds = client.log_dataset("ds", data, description="toy data")

    with exp.start_run(name="trained", kind="train") as trained:
        trained.log_params({"model": "rf", "depth": 4})
        trained.use_dataset(ds)
        trained.set_tags({"dataset": f"{ds.name}@{ds.version}"})
        report = root / "train_report.json"
        report.write_text(json.dumps({"rows": 120, "confusion": [[5, 1], [0, 6]]}))
        trained.log_artifact(report, "train_report.json")
        weights = root / "weights.bin"
        weights.write_bytes(b"\x00\x01weights")
        trained.log_artifact(weights, "model/weights.bin")
        for step in range(5):
            trained.log_metrics({"acc": 0.5 + step / 10}, step=step)
        with trained.start_child(name="child-fold") as child:
            child.log_metrics({"acc": 0.7})
        first = root / "m1.txt"
        first.write_text("model one")
        v1 = trained.log_model_version("clf", first, path_in_run="clf1", label="1.0.0")
        second = root / "m2.txt"
        second.write_text("model two")
        trained.log_model_version("clf", second, path_in_run="clf2")
    v1.set_alias("production")

    records = [
        InvocationRecord(
            request_id=f"ts-2024-01-01T00:00:{i:02d}--uuid-{i:032d}",
            model="clf",
            version=1,
            timestamp=1_704_067_200_000 + i * 1000,
            latency_ms=1.5 + i,
            status="ok",
            resource="predict",
            input={"x": i},
            result={"y": i * 2},
        )
        for i in range(30)
    ]
    client.log_invocations(("clf", 1), records[:20])
    client.log_invocations(("clf", 1), records[20:])

    with pytest.raises(ValueError), exp.start_run(name="broken") as failed:
        raise ValueError("the data ran out")

    with exp.start_run(name="long") as long:
        values = np.sin(np.arange(LONG_POINTS) / 500.0)
        values[12_345] = 50.0  # a spike the downsampled chart must keep
        long.flush()
        client.log_batch(
            long,
            metrics=[
                Metric("wave", float(v), i, 1_700_000_000_000 + i) for i, v in enumerate(values)
            ],
        )

    with exp.start_run(name="<script>alert(1)</script>") as xss:
        xss.log_params({"html": "<b>bold</b>"})

    yield Seeded(app, exp.id, trained, child, failed, long, xss, plain)
    client.close()


def login(tc: TestClient, name: str, password: str = PASSWORD, next: str = "/") -> Any:
    token = csrf_of(tc.get("/login").text)
    return tc.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": next},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
def viewer(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(seeded.app) as tc:
        assert login(tc, "vera").status_code == 303
        yield tc


@pytest.fixture
def editor(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(seeded.app) as tc:
        assert login(tc, "eddie").status_code == 303
        yield tc


def texts(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html, flags=re.S)


def runs_in_table(html: str) -> list[str]:
    """Run names in a runs table, in order."""
    return texts(html, r'<td><a href="/projects/default/runs/[0-9a-f]{32}">([^<]+)</a></td>')


def chart_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json">(.*?)</script>', html, flags=re.S)
    assert found, html[:500]
    return json.loads(found.group(1))


# --- login and logout -------------------------------------------------------------------


def test_pages_send_a_visitor_without_a_session_to_the_login_page(seeded: Seeded) -> None:
    with TestClient(seeded.app) as tc:
        answer = tc.get(f"{P}/experiments/{seeded.exp_id}?page=2", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == (
            f"/login?next={P}/experiments/{seeded.exp_id}%3Fpage%3D2"
        )
        htmx = tc.get(
            f"{P}/runs/{seeded.trained.id}/chart?key=acc",
            headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{P}/models"},
        )
        assert htmx.status_code == 401
        assert htmx.headers["HX-Redirect"] == f"/login?next={P}/models"


def test_login_with_the_right_password_opens_a_session_and_goes_to_next(seeded: Seeded) -> None:
    with TestClient(seeded.app) as tc:
        answer = login(tc, "vera", next=f"{P}/models")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{P}/models"
        page = tc.get(f"{P}/models")
        assert page.status_code == 200
        assert "vera (viewer)" in page.text


def test_a_wrong_password_shows_the_form_again_with_a_message(seeded: Seeded) -> None:
    with TestClient(seeded.app) as tc:
        answer = login(tc, "vera", password="wrong-password")
        assert answer.status_code == 401
        assert "Wrong user name or password." in answer.text
        assert 'name="password"' in answer.text
        assert 'value="vera"' in answer.text  # the name is kept, the password is not
        assert tc.get("/", follow_redirects=False).status_code == 303


def test_login_refuses_a_missing_csrf_token_and_an_outside_next(seeded: Seeded) -> None:
    with TestClient(seeded.app) as tc:
        tc.get("/login")
        refused = tc.post("/login", data={"name": "vera", "password": PASSWORD})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        answer = login(tc, "vera", next="//evil.example/steal")
        assert answer.headers["location"] == "/"


def test_logout_ends_the_session(viewer: TestClient) -> None:
    home = viewer.get("/")
    assert viewer.post("/logout").status_code == 403  # no token: not from our page
    answer = viewer.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert viewer.get("/", follow_redirects=False).status_code == 303


# --- start page and experiment ------------------------------------------------------------


def test_home_shows_experiments_recent_runs_models_and_datasets(viewer: TestClient) -> None:
    page = viewer.get("/")
    assert page.status_code == 200
    assert "Project default" in page.text
    assert ">exp-a</a>" in page.text
    assert ">long</a>" in page.text  # among the newest runs
    assert f'<a href="{P}/models/clf">clf</a>' in page.text
    assert "production→v1" in page.text
    assert f'<a href="{P}/datasets/ds">ds</a>' in page.text
    for link in ("/pipelines", f"{P}/models", f"{P}/datasets"):
        assert f'href="{link}"' in page.text


def test_experiment_page_shows_runs_with_param_and_metric_columns(
    viewer: TestClient, seeded: Seeded
) -> None:
    page = viewer.get(
        f"{P}/experiments/{seeded.exp_id}", params={"cols": "params.model, metrics.auc"}
    )
    assert page.status_code == 200
    headers = texts(page.text, r'title="sort by ([^"]+)"')
    assert headers == ["name", "status", "start_time", "params.model", "metrics.auc"]
    # newest first, and escaped: shown as text, never run
    assert runs_in_table(page.text)[0] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert "<script>alert(1)</script>" not in page.text


def test_experiment_page_sorts_in_the_store_and_pages(viewer: TestClient, seeded: Seeded) -> None:
    url = f"{P}/experiments/{seeded.exp_id}"
    query = {"q": "metrics.auc >= 0", "sort": "-metrics.auc", "per": 25, "cols": "metrics.auc"}
    first = viewer.get(url, params=query)
    names = runs_in_table(first.text)
    assert names[:3] == ["run-29", "run-28", "run-27"]
    assert len(names) == 25
    assert 'rel="next"' in first.text
    second = viewer.get(url, params={**query, "page": 2})
    assert runs_in_table(second.text) == [f"run-{i:02d}" for i in range(4, -1, -1)]
    assert 'rel="next"' not in second.text
    assert 'rel="prev"' in second.text
    ascending = viewer.get(url, params={**query, "sort": "metrics.auc"})
    assert runs_in_table(ascending.text)[:2] == ["run-00", "run-01"]


def test_experiment_filter_box_narrows_the_runs(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(
        f"{P}/experiments/{seeded.exp_id}",
        params={"q": 'metrics.auc > 0.8 and params.model = "rf"', "sort": "name"},
    )
    assert runs_in_table(page.text) == ["run-25", "run-27", "run-29"]
    none = viewer.get(f"{P}/experiments/{seeded.exp_id}", params={"q": "metrics.auc > 5"})
    assert "No runs match this filter." in none.text


def test_the_column_picker_searches_the_keys_and_ticks_the_chosen(
    viewer: TestClient, seeded: Seeded
) -> None:
    url = f"{P}/experiments/{seeded.exp_id}"
    page = viewer.get(url)
    assert 'id="column-picker"' in page.text and f'hx-get="{url}/columns"' in page.text
    everything = viewer.get(f"{url}/columns", params={"format": "json"}).json()["columns"]
    assert {"params.model", "params.n", "metrics.auc", "metrics.loss"} <= set(everything)
    found = viewer.get(f"{url}/columns", params={"search": "AU", "cols": "metrics.auc"})
    assert found.status_code == 200
    assert texts(found.text, r'data-column="([^"]+)"') == ["metrics.auc"]
    assert 'data-column="metrics.auc" checked' in found.text
    # the SQL store's query and the default every other store has agree
    from keel.store.base import MetadataStore

    store = seeded.app.state.client.store
    assert store.run_keys(seeded.exp_id) == MetadataStore.run_keys(store, seeded.exp_id)
    assert store.run_keys(seeded.exp_id, 2) == MetadataStore.run_keys(store, seeded.exp_id, 2)
    unticked = viewer.get(f"{url}/columns", params={"search": "loss"})
    assert 'data-column="metrics.loss">' in unticked.text
    none = viewer.get(f"{url}/columns", params={"search": "nothing-like-this"})
    assert "No key holds" in none.text


def test_the_column_picker_lists_a_bounded_number_of_keys(tmp_path: Path) -> None:
    """1,500 metric keys: 60 at once, and how many more a search would narrow."""
    from keel.server.settings import ServerSettings
    from keel.server.ui.pages import PICKER_SHOWN

    app = create_app(ServerSettings(store=str(tmp_path / "store")))
    app.state.accounts.add_user("vera", PASSWORD, "viewer")
    exp = app.state.client.get_or_create_exp("wide")
    with exp.start_run(name="wide") as run:
        run.log_metrics({f"m{j:04d}": j for j in range(1_500)})
    with TestClient(app) as tc:
        login(tc, "vera")
        page = tc.get(f"{P}/experiments/{exp.id}/columns")
        assert len(texts(page.text, r'data-column="([^"]+)"')) == PICKER_SHOWN
        assert f"{1_500 - PICKER_SHOWN:,} more match" in page.text
        narrow = tc.get(f"{P}/experiments/{exp.id}/columns", params={"search": "m149"})
        assert texts(narrow.text, r'data-column="([^"]+)"') == [
            f"metrics.m149{j}" for j in range(10)
        ]
        table = tc.get(f"{P}/experiments/{exp.id}", params={"cols": "metrics.m1499"})
        assert 'title="sort by metrics.m1499"' in table.text


def test_htmx_gets_only_the_runs_table(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(
        f"{P}/experiments/{seeded.exp_id}",
        params={"q": "params.model = gb", "per": 25},
        headers={"HX-Request": "true", "HX-Target": "runs"},
    )
    assert page.status_code == 200
    assert page.text.lstrip().startswith(("{#", '<div id="runs"'))
    assert "<html" not in page.text
    assert len(runs_in_table(page.text)) == 15


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("metrics.auc >> 0.5", "bad filter at character 14"),
        ("metrics.auc > 0.5 and", "expected a field"),
        ("nosuch.field = 1", "unknown query field"),
        ("params.model ~ '('", "bad regular expression"),
    ],
)
def test_a_bad_filter_is_a_message_on_the_page_not_a_500(
    viewer: TestClient, seeded: Seeded, bad: str, words: str
) -> None:
    page = viewer.get(f"{P}/experiments/{seeded.exp_id}", params={"q": bad})
    assert page.status_code == 200
    messages = texts(page.text, r'<p class="error" role="alert">([^<]+)</p>')
    assert messages and words in messages[0]
    assert 'name="q"' in page.text  # the form is there to fix it


def test_a_bad_sort_field_is_a_message(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"{P}/experiments/{seeded.exp_id}", params={"sort": "-bogus.x"})
    assert page.status_code == 200
    assert "unknown query field" in page.text


def test_the_start_page_switches_between_projects(viewer: TestClient, seeded: Seeded) -> None:
    import keel

    settings = seeded.app.state.settings
    with keel.Client(store=settings.store, project="other") as other:
        with other.start_run("elsewhere", name="far-run"):
            pass
        home = viewer.get("/")
        assert '<a href="/projects/other">other</a>' in home.text
        switched = viewer.get("/projects/other")
        assert switched.status_code == 200
        assert "Project other" in switched.text and ">far-run</a>" in switched.text
        assert ">exp-a</a>" not in switched.text
        assert "Project default" in viewer.get("/projects/default").text


# --- run page --------------------------------------------------------------------------------


def test_run_page_shows_params_tags_environment_report_artifacts_and_family(
    viewer: TestClient, seeded: Seeded
) -> None:
    run = seeded.trained
    page = viewer.get(f"{P}/runs/{run.id}")
    assert page.status_code == 200
    html = page.text
    assert "<th>depth</th><td>4</td>" in html
    assert "<th>dataset</th><td>ds@1</td>" in html
    assert "Train report" in html and "<th>rows</th><td>120</td>" in html
    assert "<th>python</th>" in html and "installed packages" in html
    assert f'href="{P}/runs/{seeded.child.id}">child-fold</a>' in html
    assert f'hx-get="{P}/runs/{run.id}/chart?key=acc"' in html
    # the artifacts browser: a folder and files at the top
    assert f'hx-get="{P}/runs/{run.id}/files?path=model"' in html
    assert f'href="{P}/runs/{run.id}/artifacts/train_report.json"' in html
    child = viewer.get(f"{P}/runs/{seeded.child.id}")
    assert f'<a href="{P}/runs/{run.id}">trained</a>' in child.text  # parent link
    assert "/static/plotly.min.js" in html


def test_artifacts_browser_opens_folders_and_downloads_files(
    viewer: TestClient, seeded: Seeded
) -> None:
    run = seeded.trained
    folder = viewer.get(f"{P}/runs/{run.id}/files", params={"path": "model"})
    assert folder.status_code == 200
    assert f'href="{P}/runs/{run.id}/artifacts/model/weights.bin"' in folder.text
    got = viewer.get(f"{P}/runs/{run.id}/artifacts/model/weights.bin")
    assert got.status_code == 200
    assert got.content == b"\x00\x01weights"
    assert got.headers["content-disposition"].startswith('attachment; filename="weights.bin"')
    assert got.headers["x-content-type-options"] == "nosniff"
    missing = viewer.get(f"{P}/runs/{run.id}/artifacts/model/nothing.bin")
    assert missing.status_code == 404
    sneaky = viewer.get(f"{P}/runs/{run.id}/artifacts/model/%2E%2E/x")
    assert sneaky.status_code in (404, 422)


def test_a_failed_run_shows_its_traceback(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"{P}/runs/{seeded.failed.id}")
    assert page.status_code == 200
    assert '<span class="status failed">failed</span>' in page.text
    traceback = texts(page.text, r'<pre class="traceback">(.*?)</pre>')
    assert traceback and "ValueError: the data ran out" in traceback[0]
    assert "Traceback (most recent call last)" in traceback[0]


def test_a_short_metric_chart_has_every_point(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"{P}/runs/{seeded.trained.id}/chart", params={"key": "acc"})
    figure = chart_of(page.text)
    assert figure["data"][0]["x"] == [0, 1, 2, 3, 4]
    assert figure["data"][0]["y"] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert figure["layout"]["xaxis"]["title"]["text"] == "step"


def test_a_100000_point_metric_is_downsampled_on_the_server(
    viewer: TestClient, seeded: Seeded
) -> None:
    page = viewer.get(f"{P}/runs/{seeded.long.id}/chart", params={"key": "wave"})
    assert page.status_code == 200
    figure = chart_of(page.text)
    trace = figure["data"][0]
    assert len(trace["y"]) <= MAX_POINTS
    assert len(trace["y"]) > MAX_POINTS * 0.9
    assert trace["x"][0] == 0 and trace["x"][-1] == LONG_POINTS - 1
    assert max(trace["y"]) == 50.0  # the spike survives
    assert min(trace["y"]) == pytest.approx(-1.0, abs=1e-4)
    assert "100,000 points" in page.text
    assert len(page.content) < 60_000


def test_a_long_chart_is_drawn_from_its_buckets_with_the_same_extremes(
    viewer: TestClient, seeded: Seeded
) -> None:
    """100,000 points at steps 0..99,999 fill 1,562 buckets: the chart reads those, not the
    points, keeps nothing in memory, and draws what the reduction of every point draws."""
    from keel.server.ui import series
    from keel.server.ui.downsample import downsample_indices

    store = seeded.app.state.client.store
    overview = store.metric_overview(seeded.long.id, "wave", series.OVERVIEW_BUCKETS)
    assert overview is not None and overview.points == LONG_POINTS
    answer = viewer.get(
        f"{P}/runs/{seeded.long.id}/chart", params={"key": "wave", "format": "json"}
    ).json()
    assert answer["points"] == LONG_POINTS
    assert not any(name[1:] == (seeded.long.id, "wave") for name in series._reduced)
    drawn = answer["figure"]["data"][0]
    whole = store.get_metric_arrays(seeded.long.id, "wave")
    reduced = whole.values[downsample_indices(whole.values)]
    assert (drawn["x"][0], drawn["x"][-1]) == (0, LONG_POINTS - 1)
    assert max(drawn["y"]) == reduced.max() and min(drawn["y"]) == pytest.approx(reduced.min())
    assert MAX_POINTS * 0.9 < len(drawn["y"]) <= MAX_POINTS


def test_a_long_chart_is_kept_reduced_until_its_history_grows(
    viewer: TestClient, seeded: Seeded
) -> None:
    """Long histories are reduced once and kept by their signature (count, last id): a
    point logged later, even at an old step, is in the next chart."""
    from keel.server.ui import series

    client = seeded.app.state.client
    points = series.CACHE_FROM + 5_000
    with client.get_or_create_exp("growing").start_run(name="growing") as run:
        run.flush()
        client.log_batch(run, metrics=[Metric("g", i % 7, i, 1_000 + i) for i in range(points)])
    url = f"{P}/runs/{run.id}/chart"
    first = viewer.get(url, params={"key": "g", "format": "json"}).json()
    assert first["points"] == points and 0 < first["shown"] <= MAX_POINTS
    assert first["figure"]["data"][0]["meta"] == {"points": points, "shown": first["shown"]}
    assert client.store.metric_signature(run.id, "g")[0] == points
    assert any(name[1:] == (run.id, "g") for name in series._reduced)  # kept
    client.log_batch(run, metrics=[Metric("g", 99.0, 10, 5)])  # late, at an early step
    again = viewer.get(url, params={"key": "g", "format": "json"}).json()
    assert again["points"] == points + 1
    assert max(again["figure"]["data"][0]["y"]) == 99.0
    html = viewer.get(url, params={"key": "g"})
    assert f"{points + 1:,} points" in html.text
    assert viewer.get(url, params={"key": "g", "format": "xml"}).status_code == 422


def test_a_one_point_metric_is_a_line_of_text(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"{P}/runs/{seeded.plain_runs[3].id}/chart", params={"key": "auc"})
    assert "auc: one point, 0.1 at step 0" in page.text
    assert "data-chart" not in page.text


# --- compare -----------------------------------------------------------------------------


def test_compare_shows_the_param_diff_and_overlaid_charts(
    viewer: TestClient, seeded: Seeded
) -> None:
    a, b = seeded.plain_runs[1], seeded.plain_runs[2]
    page = viewer.get(f"{P}/compare", params=[("runs", a.id), ("runs", b.id)])
    assert page.status_code == 200
    rows = texts(page.text, r'<tr class="(differs|same)">\s*<th>([^<]+)</th>')
    assert ("differs", "model") in rows and ("differs", "n") in rows
    assert f"key=loss&amp;runs={a.id}&amp;runs={b.id}" in page.text
    chart = viewer.get(
        f"{P}/compare/chart", params=[("key", "loss"), ("runs", a.id), ("runs", b.id)]
    )
    figure = chart_of(chart.text)
    assert [t["name"] for t in figure["data"]] == [f"run-01 ({a.id[:7]})", f"run-02 ({b.id[:7]})"]
    assert figure["data"][0]["y"] == pytest.approx([1 / 2, 1 / 3, 1 / 4])
    finals = viewer.get(
        f"{P}/compare/chart", params=[("key", "auc"), ("runs", a.id), ("runs", b.id)]
    )
    bars = chart_of(finals.text)["data"]  # one value per run: a bar each
    assert [t["type"] for t in bars] == ["bar"]
    assert bars[0]["y"] == pytest.approx([1 / N_RUNS, 2 / N_RUNS])


def test_compare_needs_two_runs(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"{P}/compare", params={"runs": seeded.trained.id})
    assert page.status_code == 422
    assert "at least two runs" in page.text


# --- models ------------------------------------------------------------------------------


def test_model_page_lists_versions_labels_aliases_and_hashes(viewer: TestClient) -> None:
    page = viewer.get(f"{P}/models/clf")
    assert page.status_code == 200
    html = page.text
    assert f'<a href="{P}/models/clf/v/2">v2</a>' in html
    assert f'<a href="{P}/models/clf/v/1">v1</a>' in html
    assert "<td>1.0.0</td>" in html
    assert f'<span class="alias">production</span> → <a href="{P}/models/clf/v/1">v1</a>' in html
    assert "Set alias" not in html  # a viewer sees no form
    models = viewer.get(f"{P}/models")
    assert "production→v1" in models.text


def test_version_page_has_lineage_and_paged_invocation_records(
    viewer: TestClient, seeded: Seeded
) -> None:
    page = viewer.get(f"{P}/models/clf/v/1")
    assert page.status_code == 200
    html = page.text
    assert f'<a href="{P}/runs/{seeded.trained.id}">trained</a>' in html
    assert f'trained on <a href="{P}/datasets/ds/v/1">ds v1</a>' in html
    assert "model one" not in html  # the artifact is linked, not inlined
    assert f'href="{P}/runs/{seeded.trained.id}/artifacts/clf1"' in html
    ids = texts(html, r"<td><code>(ts-[^<]+)</code></td>")
    assert len(ids) == 25
    assert ids[0].startswith("ts-2024-01-01T00:00:29")  # newest first
    second = viewer.get(f"{P}/models/clf/v/1/invocations", params={"page": 2})
    rest = texts(second.text, r"<td><code>(ts-[^<]+)</code></td>")
    assert [r[:22] for r in rest] == [f"ts-2024-01-01T00:00:{i:02d}" for i in range(4, -1, -1)]
    assert "{&#34;x&#34;: 4}" in second.text  # the input, as JSON
    empty = viewer.get(f"{P}/models/clf/v/2")
    assert "No invocation records." in empty.text


def test_an_editor_sets_and_moves_an_alias_through_htmx(editor: TestClient) -> None:
    page = editor.get(f"{P}/models/clf")
    assert "Set alias" in page.text
    token = csrf_of(page.text)
    htmx = {"HX-Request": "true", "HX-Target": "aliases", "X-CSRF-Token": token}
    answer = editor.post(
        f"{P}/models/clf/aliases", data={"alias": "staging", "version": "2"}, headers=htmx
    )
    assert answer.status_code == 200
    assert '<section id="aliases"' in answer.text and "<html" not in answer.text
    assert (
        f'<span class="alias">staging</span> → <a href="{P}/models/clf/v/2">v2</a>' in answer.text
    )
    moved = editor.post(
        f"{P}/models/clf/aliases", data={"alias": "staging", "version": "1"}, headers=htmx
    )
    assert f'<span class="alias">staging</span> → <a href="{P}/models/clf/v/1">v1</a>' in moved.text
    bad = editor.post(
        f"{P}/models/clf/aliases", data={"alias": "latest", "version": "1"}, headers=htmx
    )
    assert bad.status_code == 200 and 'class="error"' in bad.text
    removed = editor.post(f"{P}/models/clf/aliases/staging/delete", headers=htmx)
    assert "staging removed" in removed.text
    assert '<span class="alias">staging</span>' not in removed.text


def test_a_plain_alias_form_redirects_back_to_the_model(editor: TestClient) -> None:
    token = csrf_of(editor.get(f"{P}/models/clf").text)
    answer = editor.post(
        f"{P}/models/clf/aliases",
        data={"alias": "canary", "version": "2", "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{P}/models/clf"
    assert "canary" in editor.get(f"{P}/models/clf").text
    editor.post(f"{P}/models/clf/aliases/canary/delete", data={"csrf_token": token})


def test_the_alias_form_is_refused_to_a_viewer(viewer: TestClient) -> None:
    token = csrf_of(viewer.get(f"{P}/models/clf").text)
    answer = viewer.post(
        f"{P}/models/clf/aliases", data={"alias": "staging", "version": "2", "csrf_token": token}
    )
    assert answer.status_code == 403
    assert "needs the editor role" in answer.text
    assert "Set alias" not in viewer.get(f"{P}/models/clf").text


def test_the_alias_form_is_refused_without_a_csrf_token(editor: TestClient, seeded: Seeded) -> None:
    answer = editor.post(f"{P}/models/clf/aliases", data={"alias": "staging", "version": "2"})
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    wrong = editor.post(
        f"{P}/models/clf/aliases",
        data={"alias": "staging", "version": "2"},
        headers={"X-CSRF-Token": "not-the-token"},
    )
    assert wrong.status_code == 403
    assert "staging" not in seeded.app.state.client.get_model("clf").aliases


# --- datasets ----------------------------------------------------------------------------


def test_dataset_pages_list_versions_files_and_runs(viewer: TestClient, seeded: Seeded) -> None:
    listing = viewer.get(f"{P}/datasets")
    assert f'<a href="{P}/datasets/ds">ds</a>' in listing.text and "toy data" in listing.text
    versions = viewer.get(f"{P}/datasets/ds")
    assert f'<a href="{P}/datasets/ds/v/1">v1</a>' in versions.text
    page = viewer.get(f"{P}/datasets/ds/v/1")
    assert page.status_code == 200
    assert f'href="{P}/datasets/ds/v/1/files/data.csv"' in page.text
    assert f'<a href="{P}/runs/{seeded.trained.id}">trained</a>' in page.text
    got = viewer.get(f"{P}/datasets/ds/v/1/files/data.csv")
    assert got.content == b"x,y\n1,2\n3,4\n"


# --- errors and static files -------------------------------------------------------------


def test_a_missing_page_is_a_404_page_not_a_traceback(viewer: TestClient) -> None:
    paths = ("/no/such/page", "/runs/" + "0" * 32, f"{P}/models/nope", f"{P}/datasets/nope/v/3")
    for path in paths:
        page = viewer.get(path)
        assert page.status_code == 404, path
        assert '<section class="error">' in page.text
        assert "Traceback" not in page.text
        assert "vera (viewer)" in page.text  # still logged in on the error page
    assert "There is no page at /no/such/page." in viewer.get("/no/such/page").text


def test_plotly_and_htmx_are_served_from_the_package(seeded: Seeded) -> None:
    with TestClient(seeded.app) as tc:
        plotly = tc.get("/static/plotly.min.js")
        assert plotly.status_code == 200
        assert len(plotly.content) > 1_000_000
        assert "javascript" in plotly.headers["content-type"]
        htmx = tc.get("/static/htmx.min.js")
        assert htmx.status_code == 200 and b"htmx" in htmx.content[:200]
        assert tc.get("/static/keel.css").status_code == 200
        assert tc.get("/static/keel.js").status_code == 200


# --- the filter language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("", {}),
        ("metrics.auc > 0.9", {"metrics.auc": {"$gt": 0.9}}),
        (
            'metrics.auc > 0.9 and params.model = "rf"',
            {"$and": [{"metrics.auc": {"$gt": 0.9}}, {"params.model": "rf"}]},
        ),
        ("params.model == rf", {"params.model": "rf"}),
        ("params.n != 3", {"params.n": {"$ne": 3}}),
        ("params.n <> 'x y'", {"params.n": {"$ne": "x y"}}),
        ("metrics.loss <= -1e-3", {"metrics.loss": {"$lte": -0.001}}),
        (
            "status = failed OR status = killed",
            {"$or": [{"status": "failed"}, {"status": "killed"}]},
        ),
        (
            "a = 1 or b = 2 and c = 3",
            {"$or": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}]},
        ),
        ("(a = 1 or b = 2) and c = 3", {"$and": [{"$or": [{"a": 1}, {"b": 2}]}, {"c": 3}]}),
        ("not params.x = 1", {"$nor": [{"params.x": 1}]}),
        ('params.model in ("rf", gb)', {"params.model": {"$in": ["rf", "gb"]}}),
        ("params.n not in (1, 2)", {"params.n": {"$nin": [1, 2]}}),
        ("tags.team exists", {"tags.team": {"$exists": True}}),
        ("tags.team not exists", {"tags.team": {"$exists": False}}),
        ("params.flag = true", {"params.flag": True}),
        ("tags.note = null", {"tags.note": None}),
        ("name ~ '^run-0'", {"name": {"$regex": "^run-0"}}),
        ("metrics.`val loss` < 1", {"metrics.val loss": {"$lt": 1}}),
        ("metrics.val-loss < 1", {"metrics.val-loss": {"$lt": 1}}),
        ('params.path = "a \\"quoted\\" word"', {"params.path": 'a "quoted" word'}),
    ],
)
def test_filters_become_query_dicts(text: str, query: dict[str, Any]) -> None:
    assert parse_filter(text) == query


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("metrics.auc >", "character 14: expected a value"),
        ("metrics.auc 0.9", "expected an operator"),
        ("metrics.auc > 0.9 metrics.x", "expected 'and', 'or'"),
        ("(a = 1", "expected ')'"),
        ("a in 1", "expected '('"),
        ("a = 1 and", "expected a field"),
        ("a > true", "compares with a number or a text"),
        ("a ~ 3", "takes a text pattern"),
        ("a = 'open", "cannot read"),
        ("a not = 1", "'in' or 'exists' after 'not'"),
    ],
)
def test_bad_filters_say_where_and_what(text: str, words: str) -> None:
    with pytest.raises(FilterError, match=re.escape(words)):
        parse_filter(text)
    assert issubclass(FilterError, InvalidInput)


# --- metric series ----------------------------------------------------------------------


def test_metric_series_reads_the_history_in_its_order(tmp_path: Path) -> None:
    import keel
    from keel.server.ui.series import metric_series
    from keel.store.base import MetadataStore

    with keel.Client(store=str(tmp_path / "store")) as client:
        run = client.start_run("series")
        points = [
            Metric("m", 3.0, 2, 1_000),
            Metric("m", 1.0, 1, 2_000),
            Metric("m", float("nan"), 1, 1_000),
            Metric("m", 7.0, 1, 2_000),  # same step and time as an earlier point
            Metric("m", -1.0, 0, 5_000),
        ]
        client.log_batch(run, metrics=points)
        history = client.get_metric_history(run, "m")
        # the SQL store's fast path and the default every other store has agree
        default = MetadataStore.get_metric_arrays(client.store, run.id, "m")
        for series in (metric_series(client, run.id, "m"), default):
            assert series.steps.tolist() == [p.step for p in history]
            assert series.timestamps.tolist() == [p.timestamp for p in history]
            assert np.allclose(series.values, [p.value for p in history], equal_nan=True)
        assert len(metric_series(client, run.id, "never-logged")) == 0
        with pytest.raises(InvalidInput):
            metric_series(client, run.id, "/bad")


# --- downsampling ------------------------------------------------------------------------


def test_downsampling_keeps_the_ends_and_every_extreme() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(size=100_000)
    y[777] = 40.0
    y[90_001] = -40.0
    x = np.arange(y.shape[0])
    dx, dy = downsample(x, y, cap=1000)
    assert dx.shape[0] <= 1000
    assert dx[0] == 0 and dx[-1] == 99_999
    assert np.all(np.diff(dx) > 0)
    assert 40.0 in dy and -40.0 in dy
    assert np.array_equal(dy, y[dx])


def test_downsampling_leaves_short_series_alone_and_handles_nan() -> None:
    assert downsample_indices(np.arange(10.0)).tolist() == list(range(10))
    y = np.ones(5000)
    y[100:2000] = np.nan
    index = downsample_indices(y, cap=100)
    assert index.shape[0] <= 100
    picked = y[index]
    assert np.isnan(picked).any()  # the gap stays a gap
    assert (picked[~np.isnan(picked)] == 1.0).all()
    flat = downsample_indices(np.zeros(10_000), cap=50)
    assert flat.shape[0] <= 50
