"""The drift page of a model version and the drift badges of the models list (issue 22),
through the real app (TestClient) over a store where the iris example was trained and fed
invocation records as a recording server stores them (records and live window profiles).

A version fed rows like its training data shows no drift; rows with the petals shifted,
fed into a later hour, make it drift and name those two features. A version without a
reference profile, a period without live profiles and a bad period each get a page saying
what to do (never a 500). The pages load nothing from another site.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.server.app import create_app
from keel.server.settings import ServerSettings
from monitoring.helpers import HOUR_MS, feed, shifted, trained_iris, training_like

PASSWORD = "correct-horse"
P = "/projects/examples"
DRIFT = f"{P}/models/iris/v/1/drift"
FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]
#: iris's outputs: the class and the three class probabilities
OUTPUTS = ["probabilities.setosa", "probabilities.versicolor", "probabilities.virginica", "species"]


@dataclass
class Fed:
    """A store with iris v1 trained (its reference profile made at training) and fed."""

    app: FastAPI
    project: Path
    client: Any
    version: Any
    hour_ms: int  # the start of the current hour when fed


def _this_hour() -> int:
    return int(time.time() * 1000) // HOUR_MS * HOUR_MS


def _fed_store(root: Path) -> Fed:
    """iris trained into a store under ``root``, 300 training-like rows fed 3 hours ago, and
    a model ``plain`` registered without a reference profile."""
    project, client, version = trained_iris(root)
    hour = _this_hour()
    feed(client, version, training_like(project, 300), hour - 3 * HOUR_MS)
    weights = root / "plain.txt"
    weights.write_text("a model without monitoring")
    with client.start_run("plain", name="plain-train") as run:
        run.log_model_version("plain", weights, path_in_run="model")
    app = create_app(ServerSettings(store=str(project / ".keel")))
    app.state.accounts.add_user("vera", PASSWORD, "viewer")
    return Fed(app, project, client, version, hour)


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    root = tmp_path_factory.mktemp("drift-ui")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse isolation is not on yet
        mp.setenv("KEEL_CACHE_DIR", str(root / "cache"))
        mp.chdir(root)
        store = _fed_store(root)
    yield store
    store.app.state.client.close()
    store.client.close()


def log_in(app: FastAPI) -> TestClient:
    tc = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', tc.get("/login").text)
    assert token
    answer = tc.post(
        "/login",
        data={"name": "vera", "password": PASSWORD, "csrf_token": token[1], "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return tc


@pytest.fixture
def vera(fed: Fed) -> Iterator[TestClient]:
    with log_in(fed.app) as tc:
        yield tc


def column_rows(html: str) -> dict[str, bool]:
    """The drift table's columns: name → drifted."""
    rows = re.findall(r'<tr class="(drifted|)" data-column="([^"]+)">', html)
    return {name: flag == "drifted" for flag, name in rows}


def cells_of(html: str, column: str) -> list[str]:
    """The text of each cell of ``column``'s row in the drift table."""
    row = re.search(rf'data-column="{column}">(.*?)</tr>', html, flags=re.S)
    assert row, html[:2000]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[1], flags=re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells]


def figures(html: str) -> list[dict[str, Any]]:
    found = re.findall(r'<script type="application/json">(.*?)</script>', html, flags=re.S)
    return [json.loads(text) for text in found]


def verdict(html: str) -> str:
    found = re.search(r'<p id="verdict"[^>]*>(.*?)</p>', html, flags=re.S)
    assert found, html[:2000]
    return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())


def badge(html: str, model: str) -> tuple[str, str, str] | None:
    """(class, link, text) of ``model``'s badge on the models list, if it has one."""
    row = re.search(rf'<a href="{P}/models/{model}">{model}</a>.*?</tr>', html, flags=re.S)
    assert row, html[:2000]
    found = re.search(r'<a class="badge ([^"]+)" href="([^"]+)" title="[^"]*">([^<]+)</a>', row[0])
    return (found[1], found[2], found[3]) if found else None


# --- the drift page -------------------------------------------------------------------------


def test_rows_like_the_training_data_show_no_drift(vera: TestClient) -> None:
    page = vera.get(DRIFT)
    assert page.status_code == 200
    text = verdict(page.text)
    assert text.startswith("no drift No dataset drift: 0 of 4 features drifted"), text
    assert "300 live rows against 120 reference rows (iris_train)" in text
    rows = column_rows(page.text)
    assert sorted(rows) == sorted(FEATURES + OUTPUTS)
    assert not any(rows.values())
    # the whole table row of a feature: test, statistic, threshold, missing shares, rows
    cells = cells_of(page.text, "petal_length")
    assert cells[:4] == ["petal_length", "input", "number", "ks"]
    assert float(cells[4]) > 0.05 and cells[5] == "p < 0.05" and cells[6] == "ok"
    assert cells[7] == "0.0% → 0.0%" and cells[8] == "120 → 300"


def test_the_page_draws_a_timeline_and_one_overlaid_chart_per_column(vera: TestClient) -> None:
    page = vera.get(DRIFT, params={"window": "1h"})
    charts = figures(page.text)
    assert len(charts) == 1 + len(FEATURES) + len(OUTPUTS)
    timeline, columns = charts[0], charts[1:]
    names = [t["name"] for t in timeline["data"]]
    assert names == ["drift share", "records", "error rate", "latency p50", "latency p99"]
    shares, records = timeline["data"][0], timeline["data"][1]
    assert records["y"] == [300] and shares["y"] == [0.0]  # one hour fed, nothing drifted
    assert timeline["data"][3]["y"][0] > 0  # latency p50 in ms
    assert timeline["layout"]["shapes"][0]["y0"] == 0.5  # the dataset's threshold
    by_title = {c["layout"]["title"]["text"]: c for c in columns}
    petal = by_title["petal_length · no drift"]
    reference, live = petal["data"]
    assert (reference["name"], live["name"]) == ("reference", "live")
    assert reference["x"] == live["x"] and len(reference["x"]) == 20  # the same bins
    assert petal["layout"]["barmode"] == "overlay"
    assert sum(reference["y"]) == pytest.approx(1.0) and sum(live["y"]) == pytest.approx(1.0)
    species = by_title["output species · no drift"]
    assert species["layout"]["barmode"] == "group"
    assert set(species["data"][0]["x"]) == {"setosa", "versicolor", "virginica"}
    assert '<script src="/static/plotly.min.js?v=' in page.text


def test_the_version_page_links_its_drift_page(vera: TestClient) -> None:
    page = vera.get(f"{P}/models/iris/v/1")
    assert page.status_code == 200
    assert f'<a href="{DRIFT}">Live data against the training data</a>' in page.text


def test_a_version_without_a_reference_says_how_to_make_one(vera: TestClient) -> None:
    page = vera.get(f"{P}/models/plain/v/1/drift")
    assert page.status_code == 200
    assert "has no reference profile" in page.text
    assert "keel monitor profile plain@1 --source SOURCE" in page.text
    assert 'id="verdict"' not in page.text and "plotly.min.js" not in page.text


def test_a_period_without_live_profiles_says_so_and_where_they_are(vera: TestClient) -> None:
    page = vera.get(DRIFT, params={"since": "1h"})
    assert page.status_code == 200
    assert "No live profiles of version 1 in the last 1h" in page.text
    assert "api.record_invokes: true" in page.text and "keel monitor update iris@1" in page.text
    further = re.search(r'<a id="drift-further" href="([^"]+)"', page.text)
    assert further, page.text
    back = vera.get(further[1].replace("&amp;", "&"))  # the link finds the fed hour
    assert back.status_code == 200 and "300 live rows" in verdict(back.text)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"since": "soon"}, "since &#39;soon&#39; is not a duration"),
        ({"window": "0h"}, "window &#39;0h&#39; must be longer than zero"),
        ({"since": "300d", "window": "1m"}, "makes over 2,000 windows"),
    ],
)
def test_a_bad_period_is_a_4xx_page_with_the_reason(
    vera: TestClient, query: dict[str, str], words: str
) -> None:
    page = vera.get(DRIFT, params=query)
    assert page.status_code == 422
    found = re.search(r'<p class="error message" id="drift-error">([^<]+)</p>', page.text)
    assert found and words in found[1], page.text
    assert "Traceback" not in page.text and 'name="since"' in page.text  # the form, to fix it


def test_an_overlong_period_and_a_missing_version_are_refused(vera: TestClient) -> None:
    assert vera.get(DRIFT, params={"since": "1" * 40 + "d"}).status_code == 422
    missing = vera.get(f"{P}/models/iris/v/9/drift")
    assert missing.status_code == 404 and "has no version" in missing.text
    assert vera.get(f"{P}/models/nope/v/1/drift").status_code == 404


class Urls(HTMLParser):
    """Every URL a page loads or links (src, href, action)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("src", "href", "action") and v is not None]


def test_the_pages_load_nothing_from_another_site(vera: TestClient) -> None:
    for url in (DRIFT, f"{P}/models", f"{P}/models/plain/v/1/drift"):
        page = vera.get(url)
        parser = Urls()
        parser.feed(page.text)
        assert parser.found
        for link in parser.found:
            assert link.startswith(("/", "#", "data:")) and not link.startswith("//"), link
        assert not re.search(r"https?://", page.text), url


# --- the models list's badges -----------------------------------------------------------------


def test_the_models_list_badges_a_version_with_live_data_only(vera: TestClient, fed: Fed) -> None:
    page = vera.get(f"{P}/models")
    assert page.status_code == 200
    assert badge(page.text, "iris") == ("no-drift", DRIFT, "no drift")
    assert badge(page.text, "plain") is None  # no reference profile: nothing to say


def test_a_reload_takes_the_badge_from_the_cache(vera: TestClient, fed: Fed) -> None:
    vera.get(f"{P}/models")
    cache = fed.app.state.ui_drift_badges
    [(key, (stamp, kept))] = [(k, v) for k, v in cache.entries.items() if k[0] == fed.version.id]
    assert kept is not None and not kept.drifted
    # a verdict planted in the cache is what the next load shows: it computed nothing
    cache.entries[key] = (stamp, dataclasses.replace(kept, drifted=True))
    try:
        assert badge(vera.get(f"{P}/models").text, "iris") == ("drift", DRIFT, "drift")
    finally:
        cache.entries[key] = (stamp, kept)
    assert badge(vera.get(f"{P}/models").text, "iris") == ("no-drift", DRIFT, "no drift")


def test_past_its_time_budget_the_list_shows_only_cached_badges(
    vera: TestClient, fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.server.ui import monitoring

    fed.app.state.ui_drift_badges = None  # a fresh cache: nothing judged yet
    monkeypatch.setattr(monitoring, "BADGE_BUDGET_S", 0.0)
    assert badge(vera.get(f"{P}/models").text, "iris") is None
    assert not fed.app.state.ui_drift_badges.entries  # nothing was computed
    monkeypatch.setattr(monitoring, "BADGE_BUDGET_S", 3.0)
    assert badge(vera.get(f"{P}/models").text, "iris") == ("no-drift", DRIFT, "no drift")
    monkeypatch.setattr(monitoring, "BADGE_BUDGET_S", 0.0)  # cached now: shown without time
    assert badge(vera.get(f"{P}/models").text, "iris") == ("no-drift", DRIFT, "no drift")


def test_a_broken_badge_leaves_the_list_whole(vera: TestClient, fed: Fed) -> None:
    """A live profile file that is not a profile: the check fails, the list still shows."""
    from keel.monitoring.profiles import Profile

    # a second writer's file in the fed window (then an empty profile: adds no rows)
    path = f"monitoring/live/3600/{fed.hour_ms - 3 * HOUR_MS}/junk.kprof"
    fed.client.put_version_file(fed.version, path, b"not a profile")
    try:
        page = vera.get(f"{P}/models")
        assert page.status_code == 200
        assert badge(page.text, "iris") is None and badge(page.text, "plain") is None
        assert f'<a href="{P}/models/iris/v/1">v1</a>' in page.text
    finally:
        fed.client.put_version_file(fed.version, path, Profile().to_bytes())
    assert badge(vera.get(f"{P}/models").text, "iris") == ("no-drift", DRIFT, "no drift")


# --- shifted rows ----------------------------------------------------------------------------


def test_shifted_petals_fed_into_a_later_hour_drift_and_are_named(tmp_path: Path) -> None:
    store = _fed_store(tmp_path)
    with log_in(store.app) as tc:
        assert badge(tc.get(f"{P}/models").text, "iris") == ("no-drift", DRIFT, "no drift")
        rows = shifted(
            training_like(store.project, 300, seed=1), {"petal_length": 2.5, "petal_width": 1.0}
        )
        feed(store.client, store.version, rows, store.hour_ms - HOUR_MS)

        page = tc.get(DRIFT, params={"window": "1h"})
        assert page.status_code == 200
        text = verdict(page.text)
        assert text.startswith("drift The live data drifted: 2 of 4 features drifted"), text
        assert "600 live rows" in text
        rows_seen = column_rows(page.text)
        drifted_features = sorted(n for n in FEATURES if rows_seen[n])
        assert drifted_features == ["petal_length", "petal_width"]
        assert "Drifted: <code>petal_length</code>, <code>petal_width</code>" in page.text
        timeline = figures(page.text)[0]
        assert timeline["data"][0]["y"] == [0.0, 0.5]  # the earlier hour clean, the later drifted
        assert timeline["data"][0]["marker"]["color"][1] == "#b3261e"
        assert timeline["data"][2]["y"] == [0.0, None, 0.0]  # no line across the empty hour
        titles = [f["layout"]["title"]["text"] for f in figures(page.text)[1:]]
        assert titles[:2] == ["petal_length · drifted", "petal_width · drifted"]  # drifted first

        # a new live profile is a new cache key: the badge is judged again
        listing = tc.get(f"{P}/models").text
        assert badge(listing, "iris") == ("drift", DRIFT, "drift")
        assert "2 of 4 features drifted: petal_length, petal_width" in listing
    store.app.state.client.close()
    store.client.close()
